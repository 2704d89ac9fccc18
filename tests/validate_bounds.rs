//! Absurd values never reach a run: boundary values in every number (and every duration)
//! of two shipped scenarios either get exit 2 from `validate`, with `file:line:col` and the
//! field, or are accepted, and then `run` ends with a verdict (0, 1, 3 or 4), never a panic
//! (101) or a signal. The reported cases (issue "Bounded memory under any input") get exit 2
//! from `validate` and from `run` alike.
//!
//! Every child runs under `prlimit --as=2GiB --cpu=60` and a wall-clock timeout, so a value
//! that slipped through costs a failed test, not the shared machine's memory.
//!
//! Wall time: `validate` takes every file of a scenario in one process (hundreds of
//! variants), so the `validate` half covers every field cheaply. `run` costs a second or
//! two per variant in a debug build, so at most [`MAX_RUNS`] accepted variants per
//! scenario are run, spread evenly over the accepted ones (the same ones each time).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use toml::de::{DeTable, DeValue};

const BIN: &str = env!("CARGO_BIN_EXE_aiconfig-harness");

/// Accepted variants run per scenario.
const MAX_RUNS: usize = 6;

/// What replaces each number.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e300",
    "inf",
    "nan",
    "4294967297",
    "1_000_000_000_000",
];

/// What replaces each duration.
const DURATIONS: &[&str] = &["\"0s\"", "\"100000h\""];

/// A directory of its own for each test (they run in parallel), removed when dropped.
fn workdir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aiconfig-validate-{test}-"))
        .tempdir()
        .unwrap()
}

/// The binary under `prlimit` (2 GiB of address space, 60 s of CPU) and a wall timeout.
fn bounded(args: &[&str], wall: Duration) -> Output {
    let mut command = Command::new("prlimit");
    command
        .args(["--as=2147483648", "--cpu=60", "--"])
        .arg("timeout")
        .arg("--signal=KILL")
        .arg(format!("{}s", wall.as_secs()))
        .arg(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command.output().expect("prlimit runs (util-linux)")
}

/// A scalar a variant replaces: its field path, its byte span and whether it is a
/// duration.
struct Slot {
    field: String,
    span: std::ops::Range<usize>,
    duration: bool,
}

fn slots(text: &str) -> Vec<Slot> {
    let root = DeTable::parse(text).expect("a shipped scenario parses");
    let mut out = Vec::new();
    walk_table(root.get_ref(), "", &mut out);
    out
}

fn walk_table(table: &DeTable<'_>, path: &str, out: &mut Vec<Slot>) {
    for (key, value) in table.iter() {
        let key: &str = key.get_ref().as_ref();
        let field = if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        };
        walk_value(value, field, out);
    }
}

fn walk_value(value: &toml::Spanned<DeValue<'_>>, field: String, out: &mut Vec<Slot>) {
    match value.get_ref() {
        DeValue::Integer(_) | DeValue::Float(_) => out.push(Slot {
            field,
            span: value.span(),
            duration: false,
        }),
        DeValue::String(s) => {
            let s: &str = s.as_ref();
            if humantime_serde::re::humantime::parse_duration(s).is_ok() {
                out.push(Slot {
                    field,
                    span: value.span(),
                    duration: true,
                });
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_value(item, format!("{field}[{i}]"), out);
            }
        }
        DeValue::Table(t) => walk_table(t, &field, out),
        DeValue::Boolean(_) | DeValue::Datetime(_) => {}
    }
}

/// One variant: the file, the field and value substituted.
struct Variant {
    file: PathBuf,
    field: String,
    value: &'static str,
}

fn variants(scenario: &str, dir: &Path) -> Vec<Variant> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(scenario),
    )
    .unwrap();
    let mut out = Vec::new();
    for (n, slot) in slots(&text).into_iter().enumerate() {
        let values = if slot.duration { DURATIONS } else { NUMBERS };
        for (v, value) in values.iter().enumerate() {
            let mut variant = text.clone();
            variant.replace_range(slot.span.clone(), value);
            let file = dir.join(format!("{n:03}-{v}.toml"));
            std::fs::write(&file, variant).unwrap();
            out.push(Variant {
                file,
                field: slot.field.clone(),
                value,
            });
        }
    }
    out
}

/// `validate` every variant (one process); returns the accepted ones. Each refused one
/// must have an error line that starts `FILE:LINE:COL: field `.
fn validate_all(variants: &[Variant]) -> Vec<&Variant> {
    let mut args = vec!["validate"];
    let files: Vec<String> = variants
        .iter()
        .map(|v| v.file.display().to_string())
        .collect();
    args.extend(files.iter().map(String::as_str));
    let output = bounded(&args, Duration::from_secs(120));
    let code = output.status.code();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        matches!(code, Some(0 | 2)),
        "validate exited {:?}:\n{stderr}",
        output.status
    );
    let mut accepted = Vec::new();
    for (variant, file) in variants.iter().zip(&files) {
        if stdout
            .lines()
            .any(|l| l.starts_with(&format!("{file}: ok")))
        {
            accepted.push(variant);
            continue;
        }
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("{file}:")))
            .unwrap_or_else(|| {
                panic!(
                    "{} = {}: neither ok nor an error\n{stderr}",
                    variant.field, variant.value
                )
            });
        let rest = &line[file.len() + 1..];
        let mut parts = rest.splitn(3, ':');
        let located = parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
            && parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
            && parts.next().is_some_and(|r| r.starts_with(" field `"));
        assert!(
            located,
            "{} = {}: not located at file:line:col with a field: {line}",
            variant.field, variant.value
        );
    }
    accepted
}

/// Runs accepted variants (spread evenly, at most [`MAX_RUNS`]) with a short load unless the
/// load's length is the field under test.
fn run_some(accepted: &[&Variant], short: &[&str], dir: &Path) -> usize {
    let step = accepted.len().div_ceil(MAX_RUNS).max(1);
    let mut ran = 0;
    for variant in accepted.iter().step_by(step) {
        let out = dir.join(format!("out-{ran}"));
        let file = variant.file.display().to_string();
        let out_arg = out.display().to_string();
        let mut args = vec!["run", &file, "--out", &out_arg, "--no-progress"];
        let tested = variant.field.rsplit('.').next().unwrap_or("");
        if !short
            .iter()
            .any(|flag| flag.trim_start_matches("--").starts_with(tested))
        {
            args.extend(short);
        }
        let started = Instant::now();
        let output = bounded(&args, Duration::from_secs(90));
        assert!(
            matches!(output.status.code(), Some(0 | 1 | 3 | 4)),
            "{} = {}: run exited {:?} after {:?}\n{}",
            variant.field,
            variant.value,
            output.status,
            started.elapsed(),
            String::from_utf8_lossy(&output.stderr)
        );
        ran += 1;
    }
    ran
}

/// What was accepted, for `--nocapture`.
fn list(accepted: &[&Variant]) {
    let listed: Vec<String> = accepted
        .iter()
        .map(|v| format!("{} = {}", v.field, v.value))
        .collect();
    eprintln!("accepted: {}", listed.join("; "));
}

#[test]
fn boundary_values_in_every_number_of_quickstart() {
    let dir = workdir("quickstart");
    let variants = variants("quickstart.toml", dir.path());
    let accepted = validate_all(&variants);
    assert!(
        accepted.len() < variants.len(),
        "some boundary value must be refused"
    );
    list(&accepted);
    let ran = run_some(&accepted, &["--iterations", "40"], dir.path());
    eprintln!(
        "quickstart: {} variants, {} accepted, {ran} run",
        variants.len(),
        accepted.len()
    );
}

#[test]
fn boundary_values_in_every_number_of_model_ab_test() {
    let dir = workdir("model-ab-test");
    let variants = variants("model-ab-test.toml", dir.path());
    let accepted = validate_all(&variants);
    list(&accepted);
    let ran = run_some(&accepted, &["--duration", "1s", "--rate", "50"], dir.path());
    eprintln!(
        "model-ab-test: {} variants, {} accepted, {ran} run",
        variants.len(),
        accepted.len()
    );
}

/// The values the issue reports, each in a shipped scenario: exit 2 from `validate` and
/// from `run`, naming the file, line, column and field.
#[test]
fn the_reported_values_are_refused_by_validate_and_run() {
    let dir = workdir("reported");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let quickstart = std::fs::read_to_string(scenarios.join("quickstart.toml")).unwrap();
    let ab = std::fs::read_to_string(scenarios.join("model-ab-test.toml")).unwrap();
    let cases: [(&str, &str, &str, &str, &str); 8] = [
        (
            "concurrency",
            &quickstart,
            "concurrency = 64",
            "concurrency = 4294967297",
            "field `load.concurrency`",
        ),
        (
            "rate",
            &ab,
            "rate = 500",
            "rate = 1e300",
            "field `load.rate`",
        ),
        (
            "count",
            &quickstart,
            "count = 10_000",
            "count = 1_000_000_000_000",
            "field `population.count`",
        ),
        (
            "rollout",
            &quickstart,
            "rollout = { premium-a = 60, premium-b = 40 }",
            "rollout = { premium-a = 160, premium-b = -60 }",
            "field `ai_configs[0].targeting[2].rollout.premium-",
        ),
        (
            "time_scale",
            &quickstart,
            "time_scale = 0.05",
            "time_scale = inf",
            "field `llm.time_scale`",
        ),
        (
            "kind",
            &quickstart,
            "[population.kinds.user.attributes]",
            "[population.kinds.\"bad kind!\".attributes]",
            "field `population.kinds.bad kind!`",
        ),
        (
            "operator",
            &quickstart,
            "op = \"in\"",
            "op = \"inn\"",
            "field `ai_configs[0].targeting[2].clauses[0].op`",
        ),
        (
            "segment",
            &quickstart,
            "values = [\"beta-testers\"]",
            "values = [\"nowhere\"]",
            "field `ai_configs[0].targeting[1].clauses[0].values[0]`",
        ),
    ];
    for (name, text, from, to, field) in cases {
        assert!(text.contains(from), "{name}: {from:?} is in the scenario");
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
        let path = file.display().to_string();
        let out = dir.path().join(format!("out-{name}")).display().to_string();
        for args in [
            vec!["validate", path.as_str()],
            vec!["run", path.as_str(), "--out", out.as_str(), "--no-progress"],
        ] {
            let output = bounded(&args, Duration::from_secs(60));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{name}: `{}` exited {:?}\n{stderr}",
                args[0],
                output.status
            );
            let line = stderr
                .lines()
                .find(|l| l.contains(&path))
                .unwrap_or_else(|| panic!("{name}: no error naming the file\n{stderr}"));
            let after = &line[line.find(&path).unwrap() + path.len()..];
            let mut parts = after.trim_start_matches(':').splitn(3, ':');
            let (l, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(
                l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok(),
                "{name}: no line and column: {line}"
            );
            assert!(line.contains(field), "{name}: {line} does not name {field}");
        }
    }
}
