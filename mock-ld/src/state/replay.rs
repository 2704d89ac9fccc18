//! Reading the journal back.
//!
//! A line counts once it ends with `\n`: a change is acknowledged only after its whole line,
//! newline included, is written and fsynced. So the last line may be torn (a crash during the
//! write) or, after a power loss, garbage; it was never acknowledged and is dropped with a
//! warning. Anything wrong before the last line means the file was damaged some other way,
//! and start-up stops rather than serve a state with a hole in it.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StateError;

/// One journal line.
#[derive(Serialize, Deserialize)]
pub struct Line<R> {
    pub seq: u64,
    pub change: R,
}

/// The changes in `bytes` (the journal at `path`) after `snapshot_seq`, oldest first.
pub fn lines<R: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    snapshot_seq: u64,
) -> Result<Vec<Line<R>>, StateError> {
    let mut segments: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // What follows the last newline: empty when the file ends cleanly.
    let unterminated = segments.pop().unwrap_or_default();
    if !unterminated.is_empty() {
        tracing::warn!(journal = %path.display(), line = segments.len() + 1, bytes = unterminated.len(), "dropping a torn last line (a write cut short by a crash; it was never acknowledged)");
    }
    let count = segments.len();
    let mut out: Vec<Line<R>> = Vec::new();
    let mut previous = None;
    for (i, segment) in segments.into_iter().enumerate() {
        let place = format!("{}:{}", path.display(), i + 1);
        let line: Line<R> = match serde_json::from_slice(segment) {
            Ok(line) => line,
            Err(e) if i + 1 == count && unterminated.is_empty() => {
                tracing::warn!(journal = %path.display(), line = i + 1, error = %e, "dropping a corrupt last line (never acknowledged)");
                break;
            }
            Err(e) => {
                return Err(StateError::Corrupt {
                    place,
                    message: format!(
                        "corrupt journal line ({e}) before the end of the journal; mock-ld \
                         will not guess past it, so restore the file or remove the directory \
                         to start empty"
                    ),
                })
            }
        };
        check_order(&place, previous, line.seq, snapshot_seq)?;
        previous = Some(line.seq);
        if line.seq > snapshot_seq {
            out.push(line);
        }
    }
    Ok(out)
}

/// Lines count up by one. Lines the snapshot already holds may precede it (a crash between
/// writing the snapshot and emptying the journal), but the first one after it must follow it.
fn check_order(
    place: &str,
    previous: Option<u64>,
    seq: u64,
    snapshot_seq: u64,
) -> Result<(), StateError> {
    let expected = match previous {
        Some(previous) => Some(previous + 1),
        None if seq > snapshot_seq => Some(snapshot_seq + 1),
        None => None,
    };
    match expected {
        Some(expected) if seq != expected => Err(StateError::Corrupt {
            place: place.to_owned(),
            message: format!(
                "journal line has seq {seq} where {expected} was due: changes are missing \
                 or out of order"
            ),
        }),
        _ => Ok(()),
    }
}
