//! Durable state on disk (`--state DIR`): a snapshot plus an append-only journal, generic over
//! what they hold ([`crate::api`] decides that).
//!
//! Files in DIR:
//! - `snapshot.json`: `{"format": 1, "seq": N, "state": …}`, everything up to change N. It is
//!   replaced atomically: written to `snapshot.json.tmp`, fsynced, renamed, and the directory
//!   fsynced.
//! - `journal.jsonl`: one line `{"seq": N, "change": …}` per change after the snapshot, written
//!   and fsynced before the change is acknowledged. Start-up replays it over the snapshot (see
//!   [`replay`] for torn and corrupt lines), writes a new snapshot and empties it.
//! - `lock`: locked while a mock-ld uses the directory, so two never write the same journal.

pub mod lines;
mod replay;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use replay::Line;

/// The snapshot layout this build writes and reads.
const FORMAT: u32 = 1;
/// The journal size past which [`Journal::wants_compaction`] says a snapshot is due.
const COMPACT_BYTES: u64 = 8 << 20;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is in use by another mock-ld (it holds {}/lock)", dir.display(), dir.display())]
    Busy { dir: PathBuf },
    /// `place` is `FILE:LINE` or `FILE:LINE:COLUMN`.
    #[error("{place}: {message}")]
    Corrupt { place: String, message: String },
    /// A journal that failed once takes no more writes: after a failed write or fsync the file
    /// may hold a partial line, and appending after it would corrupt the middle.
    #[error("the journal {} failed earlier ({why}); restart mock-ld", path.display())]
    Failed { why: String, path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot<S> {
    format: u32,
    seq: u64,
    state: S,
}

/// What a state directory held at start-up.
pub struct Recovered<S, R> {
    /// The last snapshot; `None` on a first start, when the directory holds nothing.
    pub snapshot: Option<S>,
    /// The journal's changes after the snapshot, oldest first.
    pub changes: Vec<R>,
}

/// A locked state directory whose contents have been read but not yet rewritten.
pub struct StateDir {
    dir: PathBuf,
    /// Held, never read: the lock lasts as long as the file is open.
    _lock: File,
    seq: u64,
}

impl StateDir {
    /// Creates DIR if needed, locks it and reads its snapshot and journal.
    pub fn open<S: DeserializeOwned, R: DeserializeOwned>(
        dir: &Path,
    ) -> Result<(StateDir, Recovered<S, R>), StateError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StateError::Busy {
                    dir: dir.to_owned(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let snapshot = read_snapshot::<S>(&dir.join("snapshot.json"))?;
        let snapshot_seq = snapshot.as_ref().map_or(0, |s| s.seq);
        let journal = dir.join("journal.jsonl");
        let bytes = match fs::read(&journal) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&journal)(e)),
        };
        let lines: Vec<Line<R>> = replay::lines(&journal, &bytes, snapshot_seq)?;
        if snapshot.is_none() && !lines.is_empty() {
            // Start-up writes the snapshot before the first journal line, so it was removed.
            return Err(StateError::Corrupt {
                place: dir.join("snapshot.json").display().to_string(),
                message: "missing, though the journal holds changes made after it; restore \
                          it or remove the directory to start empty"
                    .to_owned(),
            });
        }
        let seq = lines.last().map_or(snapshot_seq, |l| l.seq);
        let recovered = Recovered {
            snapshot: snapshot.map(|s| s.state),
            changes: lines.into_iter().map(|l| l.change).collect(),
        };
        let dir = StateDir {
            dir: dir.to_owned(),
            _lock: lock,
            seq,
        };
        Ok((dir, recovered))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Starts journaling: `state` (what was recovered, plus anything loaded since) becomes the
    /// snapshot and the journal starts empty.
    pub fn start<S: Serialize>(self, state: &S) -> Result<Journal, StateError> {
        let path = self.dir.join("journal.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut journal = Journal {
            dir: self,
            path,
            file,
            bytes: 0,
            failed: None,
        };
        journal.compact(state)?;
        Ok(journal)
    }
}

fn read_snapshot<S: DeserializeOwned>(path: &Path) -> Result<Option<Snapshot<S>>, StateError> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let snapshot: Snapshot<S> = serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
        place: format!("{}:{}:{}", path.display(), e.line(), e.column()),
        message: format!(
            "unreadable snapshot: {e}; mock-ld will not guess, so restore the file or \
             remove the directory to start empty"
        ),
    })?;
    if snapshot.format != FORMAT {
        return Err(StateError::Corrupt {
            place: format!("{}:1", path.display()),
            message: format!(
                "snapshot format {} is not {FORMAT}, the one this mock-ld reads",
                snapshot.format
            ),
        });
    }
    Ok(Some(snapshot))
}

/// The open journal: appends changes durably and compacts them into a snapshot.
pub struct Journal {
    dir: StateDir,
    path: PathBuf,
    file: File,
    bytes: u64,
    failed: Option<String>,
}

impl Journal {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Fails if an earlier write failed; see [`StateError::Failed`].
    pub fn check(&self) -> Result<(), StateError> {
        match &self.failed {
            Some(why) => Err(StateError::Failed {
                why: why.clone(),
                path: self.path.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Appends one change as one line and fsyncs it: once this returns, the change survives
    /// a crash.
    pub fn append<R: Serialize>(&mut self, change: &R) -> Result<(), StateError> {
        self.check()?;
        let seq = self.dir.seq + 1;
        let mut line =
            serde_json::to_vec(&Line { seq, change }).map_err(|e| StateError::Failed {
                why: format!("cannot serialize change {seq}: {e}"),
                path: self.path.clone(),
            })?;
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.failed = Some(e.to_string());
            return Err(io(&self.path)(e));
        }
        self.dir.seq = seq;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Whether the journal has grown enough that a snapshot should replace it.
    pub fn wants_compaction(&self) -> bool {
        self.bytes > COMPACT_BYTES
    }

    /// Writes `state`, which must include every change appended so far, as the snapshot and
    /// empties the journal.
    pub fn compact<S: Serialize>(&mut self, state: &S) -> Result<(), StateError> {
        self.check()?;
        let dir = self.dir.path().to_owned();
        let snapshot = Snapshot {
            format: FORMAT,
            seq: self.dir.seq,
            state,
        };
        let temp = dir.join("snapshot.json.tmp");
        let written = File::create(&temp).and_then(|mut file| {
            let mut writer = std::io::BufWriter::new(&mut file);
            serde_json::to_writer(&mut writer, &snapshot)?;
            writer.flush()?;
            drop(writer);
            file.sync_all()
        });
        written.map_err(io(&temp))?;
        let target = dir.join("snapshot.json");
        fs::rename(&temp, &target).map_err(io(&target))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        // A crash before this truncation leaves lines the snapshot already holds; replay
        // skips them by their `seq`.
        let emptied = self.file.set_len(0).and_then(|()| self.file.sync_all());
        if let Err(e) = emptied {
            self.failed = Some(e.to_string());
            return Err(io(&self.path)(e));
        }
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
