//! Received events made durable with `--state DIR`: each payload mock-ld stores is appended
//! to `DIR/events.jsonl` and fsynced before its 202 goes out, and start-up replays the file
//! through the same [`EventLog::record`], so the events an SDK was told were received, their
//! counts and their delivery latencies survive a restart (a crash included).
//!
//! Bounded: past `--max-event-journal-bytes` of lines mock-ld stops appending, says so in a
//! warning and in `/admin/events/stats` (`journal.full`), and goes on counting in memory
//! only. Rejected payloads and each fault's own counts are not journaled; payloads refused
//! under a fault are, apart, in `refused.jsonl` ([`crate::faults::journal`]).
//! `/admin/reset` empties the file with the log.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::log::{EventLog, Source};
use crate::state::lines::each_complete_line;
use crate::state::StateError;

const FILE: &str = "events.jsonl";

/// One stored payload, one line.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    #[serde(borrow)]
    project: Cow<'a, str>,
    #[serde(borrow)]
    env: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    payload_id: Option<Cow<'a, str>>,
    received_at: u64,
    /// The payload's JSON as received (inflated), on one line.
    #[serde(borrow)]
    events: &'a RawValue,
}

/// What `/admin/events/stats` says of the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalStatus {
    pub bytes: u64,
    /// Events read back from the file when mock-ld started, in the environment asked about
    /// (every environment's when none is): what it had acknowledged before a restart.
    pub replayed_events: u64,
    /// Past its bound: what arrived since is in memory only.
    pub full: bool,
    /// A write failed: nothing more is appended (a partial line may end the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

pub struct EventJournal {
    path: PathBuf,
    max_bytes: u64,
    writer: Mutex<(File, JournalStatus)>,
    /// Events replayed at start, by project and environment; emptied with the file.
    replayed: Mutex<BTreeMap<(String, String), u64>>,
}

impl EventJournal {
    /// Replays `DIR/events.jsonl` into `log`, then opens it for appending.
    pub fn open(dir: &Path, max_bytes: u64, log: &EventLog) -> Result<EventJournal, StateError> {
        let path = dir.join(FILE);
        let replayed = replay(&path, log)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| io(&path, source))?;
        // A torn last line goes, so that the next line starts on a line of its own.
        file.set_len(replayed.bytes)
            .map_err(|source| io(&path, source))?;
        let bytes = replayed.bytes;
        if replayed.payloads > 0 {
            tracing::info!(journal = %path.display(), payloads = replayed.payloads, bytes, "received events recovered");
        }
        let status = JournalStatus {
            bytes,
            full: bytes >= max_bytes,
            ..JournalStatus::default()
        };
        Ok(EventJournal {
            path,
            max_bytes,
            writer: Mutex::new((file, status)),
            replayed: Mutex::new(replayed.events),
        })
    }

    /// Appends one stored payload (`json` as inflated) and fsyncs it.
    pub fn append(&self, source: &Source, payload_id: Option<&str>, received_at: u64, json: &[u8]) {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (file, status) = &mut *guard;
        if status.full || status.failed.is_some() {
            return;
        }
        let line = match encode(source, payload_id, received_at, json) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(error = %e, "an events payload could not be journaled");
                return;
            }
        };
        if status.bytes + line.len() as u64 > self.max_bytes {
            status.full = true;
            tracing::warn!(journal = %self.path.display(), max_bytes = self.max_bytes, "the events journal is full (--max-event-journal-bytes): events received from now on are not durable");
            return;
        }
        match file.write_all(&line).and_then(|()| file.sync_data()) {
            Ok(()) => status.bytes += line.len() as u64,
            Err(e) => {
                tracing::error!(journal = %self.path.display(), error = %e, "the events journal failed; received events are no longer durable");
                status.failed = Some(e.to_string());
            }
        }
    }

    /// Empties the file (`/admin/reset`).
    pub fn clear(&self) {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (file, status) = &mut *guard;
        self.replayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        match file.set_len(0).and_then(|()| file.sync_all()) {
            Ok(()) => *status = JournalStatus::default(),
            Err(e) => status.failed = Some(e.to_string()),
        }
    }

    /// The journal's status, with the events replayed at start in `project` and `env` (every
    /// project's or environment's where `None`).
    pub fn status(&self, project: Option<&str>, env: Option<&str>) -> JournalStatus {
        let replayed_events = self
            .replayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((p, e), _)| project.is_none_or(|x| x == p) && env.is_none_or(|x| x == e))
            .map(|(_, n)| n)
            .sum();
        let status = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone();
        JournalStatus {
            replayed_events,
            ..status
        }
    }
}

/// The line for a payload: its JSON with raw line breaks (whitespace only, in valid JSON)
/// made spaces, so that it stays one line.
fn encode(
    source: &Source,
    payload_id: Option<&str>,
    received_at: u64,
    json: &[u8],
) -> serde_json::Result<Vec<u8>> {
    let flat: Vec<u8> = json
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect();
    let text = std::str::from_utf8(&flat).map_err(serde::de::Error::custom)?;
    let events: &RawValue = serde_json::from_str(text)?;
    let mut line = serde_json::to_vec(&Line {
        project: Cow::Borrowed(&source.project),
        env: Cow::Borrowed(&source.env),
        payload_id: payload_id.map(Cow::Borrowed),
        received_at,
        events,
    })?;
    line.push(b'\n');
    Ok(line)
}

struct Replayed {
    payloads: u64,
    /// Events stored, by project and environment.
    events: BTreeMap<(String, String), u64>,
    /// Bytes of the complete lines.
    bytes: u64,
}

/// Records every complete line of the file into `log`. A last line without its newline was
/// never acknowledged (a crash mid-write) and is dropped; a bad line before it stops start-up.
fn replay(path: &Path, log: &EventLog) -> Result<Replayed, StateError> {
    let mut events = BTreeMap::new();
    let read = each_complete_line(path, |number, bytes| {
        let line: Line<'_> = serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
            place: format!("{}:{number}:{}", path.display(), e.column()),
            message: format!("not an events journal line ({e}); restore the file or remove it to start without the events received before"),
        })?;
        let source = Source {
            project: line.project.into_owned(),
            env: line.env.into_owned(),
        };
        let id = line.payload_id.map(Cow::into_owned);
        let scope = (source.project.clone(), source.env.clone());
        let outcome = super::record_json(
            log,
            source,
            id,
            line.events.get().as_bytes(),
            line.received_at,
        )
        .map_err(|message| StateError::Corrupt {
            place: format!("{}:{number}", path.display()),
            message,
        })?;
        if let super::log::Outcome::Stored { events: n } = outcome {
            *events.entry(scope).or_default() += n as u64;
        }
        Ok(())
    })?;
    Ok(Replayed {
        payloads: read.lines,
        events,
        bytes: read.bytes,
    })
}

fn io(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source,
    }
}
