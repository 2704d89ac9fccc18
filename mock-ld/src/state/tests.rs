use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

type State = BTreeMap<String, u64>;

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "mock-ld-state-{name}-{}-{nanos}",
            std::process::id()
        ));
        TempDir(dir)
    }

    fn journal(&self) -> PathBuf {
        self.0.join("journal.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        fs::remove_dir_all(&self.0).ok();
    }
}

fn open(dir: &TempDir) -> Result<(StateDir, Recovered<State, Value>), StateError> {
    StateDir::open(&dir.0)
}

/// Starts a journal on `dir` and appends `changes`; returns the recovered changes.
fn write(dir: &TempDir, changes: &[Value]) {
    let (state_dir, _) = open(dir).unwrap();
    let mut journal = state_dir.start(&State::new()).unwrap();
    for change in changes {
        journal.append(change).unwrap();
    }
}

fn append_raw(dir: &TempDir, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(dir.journal()).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn a_fresh_directory_recovers_nothing() {
    let dir = TempDir::new("fresh");
    let (_, recovered) = open(&dir).unwrap();
    assert!(recovered.snapshot.is_none() && recovered.changes.is_empty());
}

#[test]
fn a_journal_without_its_snapshot_is_refused() {
    let dir = TempDir::new("no-snapshot");
    write(&dir, &[json!(1)]);
    fs::remove_file(dir.0.join("snapshot.json")).unwrap();
    let err = open(&dir).err().unwrap().to_string();
    assert!(err.contains("snapshot.json: missing"), "{err}");
}

#[test]
fn appended_changes_replay_in_order() {
    let dir = TempDir::new("replay");
    write(&dir, &[json!({"a": 1}), json!({"b": 2})]);
    let (_, recovered) = open(&dir).unwrap();
    assert_eq!(recovered.snapshot, Some(State::new()));
    assert_eq!(recovered.changes, vec![json!({"a": 1}), json!({"b": 2})]);
}

#[test]
fn a_torn_last_line_is_dropped() {
    let dir = TempDir::new("torn");
    write(&dir, &[json!(1), json!(2)]);
    append_raw(&dir, br#"{"seq":3,"change":{"half"#);
    let (_, recovered) = open(&dir).unwrap();
    assert_eq!(recovered.changes, vec![json!(1), json!(2)]);
}

#[test]
fn a_corrupt_last_complete_line_is_dropped() {
    let dir = TempDir::new("garbage-tail");
    write(&dir, &[json!(1)]);
    append_raw(&dir, b"\0\0\0\0\n");
    let (_, recovered) = open(&dir).unwrap();
    assert_eq!(recovered.changes, vec![json!(1)]);
}

#[test]
fn corruption_before_the_end_stops_recovery_naming_file_and_line() {
    let dir = TempDir::new("corrupt");
    write(&dir, &[json!(1)]);
    append_raw(&dir, b"{not json}\n");
    append_raw(&dir, br#"{"seq":3,"change":3}"#);
    append_raw(&dir, b"\n");
    let err = open(&dir).err().unwrap().to_string();
    let place = format!("{}:2: corrupt journal line", dir.journal().display());
    assert!(err.starts_with(&place), "{err}");
}

#[test]
fn a_gap_in_the_sequence_is_corruption() {
    let dir = TempDir::new("gap");
    write(&dir, &[json!(1)]);
    append_raw(&dir, b"{\"seq\":3,\"change\":3}\n");
    let err = open(&dir).err().unwrap().to_string();
    assert!(
        err.contains(":2: journal line has seq 3 where 2 was due"),
        "{err}"
    );
}

#[test]
fn compaction_folds_the_journal_into_the_snapshot() {
    let dir = TempDir::new("compact");
    let (state_dir, _) = open(&dir).unwrap();
    let mut journal = state_dir.start(&State::new()).unwrap();
    journal.append(&json!("a")).unwrap();
    journal.append(&json!("b")).unwrap();
    let state = State::from([("a".to_owned(), 1), ("b".to_owned(), 2)]);
    journal.compact(&state).unwrap();
    journal.append(&json!("c")).unwrap();
    drop(journal);
    let (state_dir, recovered) = open(&dir).unwrap();
    assert_eq!(recovered.snapshot, Some(state.clone()));
    assert_eq!(recovered.changes, vec![json!("c")]);
    // Restarting snapshots again and empties the journal; the sequence continues.
    let mut journal = state_dir.start(&state).unwrap();
    assert_eq!(fs::metadata(dir.journal()).unwrap().len(), 0);
    journal.append(&json!("d")).unwrap();
    let text = fs::read_to_string(dir.journal()).unwrap();
    assert!(text.starts_with("{\"seq\":4,"), "{text}");
}

#[test]
fn lines_the_snapshot_holds_are_skipped() {
    // A crash between renaming the snapshot and emptying the journal.
    let dir = TempDir::new("overlap");
    write(&dir, &[json!(1), json!(2)]);
    let kept = fs::read(dir.journal()).unwrap();
    let (state_dir, _) = open(&dir).unwrap();
    drop(
        state_dir
            .start(&State::from([("all".to_owned(), 2)]))
            .unwrap(),
    );
    fs::write(dir.journal(), &kept).unwrap();
    append_raw(&dir, b"{\"seq\":3,\"change\":3}\n");
    let (_, recovered) = open(&dir).unwrap();
    assert_eq!(recovered.snapshot.unwrap()["all"], 2);
    assert_eq!(recovered.changes, vec![json!(3)]);
}

#[test]
fn a_directory_in_use_is_refused() {
    let dir = TempDir::new("busy");
    let (_held, _) = open(&dir).unwrap();
    let err = open(&dir).err().unwrap().to_string();
    assert!(err.contains("in use by another mock-ld"), "{err}");
}

#[test]
fn a_corrupt_snapshot_names_its_position() {
    let dir = TempDir::new("bad-snapshot");
    write(&dir, &[]);
    fs::write(dir.0.join("snapshot.json"), "{\"format\":1,\n\"seq\":x}").unwrap();
    let err = open(&dir).err().unwrap().to_string();
    assert!(err.contains("snapshot.json:2:"), "{err}");
    assert!(err.contains("unreadable snapshot"), "{err}");
}
