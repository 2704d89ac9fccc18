//! Refused events made durable with `--state DIR`: each [`Change`] to the refused-event
//! ledger is appended to `DIR/refused.jsonl` as one line, and start-up replays the file
//! through the same [`Ledger::apply`], so `GET /admin/faults` `refusedEvents` and the
//! refused payload ids (to tell a retry) survive a restart.
//!
//! A line is written with one `write` and not fsynced: it survives the process dying
//! (`kill -9`), as the page cache outlives it, but a power loss may lose the last ones. A
//! refusal promises the client nothing, unlike a 202 (whose events `events.jsonl` fsyncs).
//! A crash mid-write leaves a torn last line, dropped at replay.
//!
//! Bounded by `--max-event-journal-bytes` (the bound of `events.jsonl`, applied to this file
//! on its own): past it mock-ld stops appending, says so in a warning and in
//! `/admin/faults` (`journal.full`), and goes on counting in memory only. `/admin/reset`
//! empties the file with the totals.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::refused::{Change, Ledger};
use crate::state::lines::each_complete_line;
use crate::state::StateError;

const FILE: &str = "refused.jsonl";

/// What `/admin/faults` says of the journal (with `--state` only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedJournalStatus {
    pub bytes: u64,
    /// Past its bound: refusals since are counted in memory only.
    pub full: bool,
    /// A write failed: nothing more is appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The open `refused.jsonl`. Its owner serializes the calls (the faults registry's lock),
/// so lines are in the order their changes were applied.
pub struct RefusedJournal {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    status: RefusedJournalStatus,
}

impl RefusedJournal {
    /// Replays `DIR/refused.jsonl` into `ledger`, then opens it for appending.
    pub fn open(dir: &Path, max_bytes: u64, ledger: &mut Ledger) -> Result<Self, StateError> {
        let path = dir.join(FILE);
        let (lines, bytes) = replay(&path, ledger)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| io(&path, source))?;
        // A torn last line goes, so that the next line starts on a line of its own.
        file.set_len(bytes).map_err(|source| io(&path, source))?;
        if lines > 0 {
            tracing::info!(journal = %path.display(), lines, bytes, "refused events recovered");
        }
        let status = RefusedJournalStatus {
            bytes,
            full: bytes >= max_bytes,
            failed: None,
        };
        Ok(RefusedJournal {
            path,
            max_bytes,
            file,
            status,
        })
    }

    /// Appends `change` as one line.
    pub fn append(&mut self, change: &Change) {
        if self.status.full || self.status.failed.is_some() {
            return;
        }
        let mut line = serde_json::to_vec(change).expect("a change serializes");
        line.push(b'\n');
        if self.status.bytes + line.len() as u64 > self.max_bytes {
            self.status.full = true;
            tracing::warn!(journal = %self.path.display(), max_bytes = self.max_bytes, "the refused-events journal is full (--max-event-journal-bytes): refusals from now on are not durable");
            return;
        }
        match self.file.write_all(&line) {
            Ok(()) => self.status.bytes += line.len() as u64,
            Err(e) => {
                tracing::error!(journal = %self.path.display(), error = %e, "the refused-events journal failed; refusals are no longer durable");
                self.status.failed = Some(e.to_string());
            }
        }
    }

    /// Empties the file (`/admin/reset`).
    pub fn clear(&mut self) {
        match self.file.set_len(0) {
            Ok(()) => self.status = RefusedJournalStatus::default(),
            Err(e) => self.status.failed = Some(e.to_string()),
        }
    }

    pub fn status(&self) -> RefusedJournalStatus {
        self.status.clone()
    }
}

/// Applies every complete line of the file to `ledger`; the lines and bytes read. A last
/// line without its newline is a write a crash cut short, and is dropped; a bad line
/// before it stops start-up.
fn replay(path: &Path, ledger: &mut Ledger) -> Result<(u64, u64), StateError> {
    let read = each_complete_line(path, |number, line| {
        let change: Change = serde_json::from_slice(line).map_err(|e| StateError::Corrupt {
            place: format!("{}:{number}:{}", path.display(), e.column()),
            message: format!("not a refused-events journal line ({e}); restore the file or remove it to start without the refusals counted before"),
        })?;
        ledger.apply(&change);
        Ok(())
    })?;
    Ok((read.lines, read.bytes))
}

fn io(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source,
    }
}
