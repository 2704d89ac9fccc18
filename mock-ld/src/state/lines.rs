//! Reading an append-only journal of JSON lines back, streaming (the events and refusals
//! journals can be large): a line counts once it ends with `\n`, so a last line without
//! one is a write a crash cut short, never acknowledged, and is dropped with a warning.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::StateError;

/// What [`each_complete_line`] read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Complete lines.
    pub lines: u64,
    /// Their bytes, newlines included: where the next append goes.
    pub bytes: u64,
}

/// Calls `each` with the number (from 1) and bytes of every complete line of the file at
/// `path`, in order; an error from `each` stops the reading. A missing file has no lines.
pub fn each_complete_line(
    path: &Path,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), StateError>,
) -> Result<Read, StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::default()),
        Err(source) => return Err(io(source)),
    };
    let mut reader = BufReader::new(file);
    let (mut buffer, mut read) = (Vec::new(), Read::default());
    loop {
        buffer.clear();
        let n = reader.read_until(b'\n', &mut buffer).map_err(io)?;
        if n == 0 {
            return Ok(read);
        }
        if buffer.last() != Some(&b'\n') {
            tracing::warn!(journal = %path.display(), line = read.lines + 1, "dropping a torn last line (a write cut short by a crash, never acknowledged)");
            return Ok(read);
        }
        each(read.lines + 1, &buffer)?;
        read.lines += 1;
        read.bytes += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_only_and_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"torn\"").unwrap();
        let mut seen = Vec::new();
        let read = each_complete_line(&path, |n, line| {
            seen.push((n, line.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            read,
            Read {
                lines: 2,
                bytes: 16
            }
        );
        assert_eq!(
            seen,
            [(1, b"{\"a\":1}\n".to_vec()), (2, b"{\"b\":2}\n".to_vec())]
        );
        let missing = each_complete_line(&dir.path().join("none"), |_, _| Ok(())).unwrap();
        assert_eq!(missing, Read::default());
    }
}
