//! The `mock-ld` binary: its start-up contract and its exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mock-ld");

#[test]
fn first_line_is_the_listening_url() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--sdk-key", "sdk-cli"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let rest: Vec<String> = lines.by_ref().take(3).map(Result::unwrap).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    let url = first
        .strip_prefix("mock-ld listening on http://127.0.0.1:")
        .expect(&first);
    assert!(url.parse::<u16>().unwrap() > 0);
    // Secrets are masked after the first line: a short one entirely.
    assert!(
        rest[0].contains("environment test: SDK key ****") && !rest[0].contains("sdk-cli"),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("environment production")),
        "{rest:?}"
    );
}

#[test]
fn a_bad_data_file_exits_2_naming_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("mock-ld-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "flags:\n  f:\n    on: maybe\n").unwrap();
    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:3:", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("flags.f.on"), "{stderr}");

    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data", "staging=x.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"staging\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_non_loopback_address_needs_an_admin_token() {
    let output = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("MOCK_LD_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-token"), "{stderr}");
}
