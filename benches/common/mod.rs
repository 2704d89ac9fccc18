//! What the benches that run the `mock-ld` binary share: building and starting it as a
//! child process on 127.0.0.1 (port 0), reading its memory and CPU from `/proc`, and a
//! minimal raw HTTP/1.1 client for `/all` streams (one tokio task per connection,
//! incremental de-chunking, no per-frame allocation beyond its buffers).
//!
//! Each bench uses part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

pub const SDK_KEY: &str = "sdk-default-test";

// ---------------------------------------------------------------------------------------
// The mock-ld child process
// ---------------------------------------------------------------------------------------

/// Kills the child when dropped, also on a panic.
pub struct MockLdProcess {
    pub child: Child,
    pub base_url: String,
}

impl Drop for MockLdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MockLdProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port`, for raw connections.
    pub fn addr(&self) -> String {
        self.base_url.trim_start_matches("http://").to_owned()
    }
}

/// `target/<profile>`: a bench executable lives in `target/<profile>/deps/`.
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// The mock-ld binary of this bench's own profile (`target/release` for `cargo bench`,
/// `target/debug` for `cargo test`), built first so that it is current; if that build
/// fails, an existing binary is used with a warning. `$override_var=/path/to/mock-ld` runs
/// that binary instead, without building (to compare two builds).
pub fn mock_ld_binary(bench: &str, override_var: &str) -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(override_var) {
        let bin = PathBuf::from(bin);
        return if bin.exists() {
            Ok(bin)
        } else {
            Err(format!("{override_var}={} does not exist", bin.display()))
        };
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = profile_dir().ok_or("cannot find this bench's target directory")?;
    let release = dir.file_name().is_some_and(|n| n == "release");
    let bin = dir.join(format!("mock-ld{}", std::env::consts::EXE_SUFFIX));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(&cargo);
    build
        .current_dir(manifest_dir)
        .args(["build", "--quiet", "-p", "mock-ld", "--bin", "mock-ld"]);
    if release {
        build.arg("--release");
    }
    eprintln!(
        "{bench}: building mock-ld ({}) …",
        if release { "release" } else { "debug" }
    );
    let built = build.status();
    match (&built, bin.exists()) {
        (Ok(status), true) if status.success() => Ok(bin),
        (_, true) => {
            eprintln!(
                "{bench}: WARNING: `{cargo} build -p mock-ld` failed ({built:?}); using the existing {} (may be stale)",
                bin.display()
            );
            Ok(bin)
        }
        (_, false) => Err(format!(
            "no mock-ld binary at {} and `{cargo} build -p mock-ld{}` failed ({built:?}); build it first",
            bin.display(),
            if release { " --release" } else { "" }
        )),
    }
}

/// Starts `bin --listen 127.0.0.1:0 --heartbeat-secs 60 ARGS`, logging warnings and errors
/// to this process's stderr. With `address_space`, under `prlimit --as=BYTES` (which execs
/// mock-ld, so the child's pid is mock-ld's): past it an allocation fails and mock-ld
/// aborts instead of taking the machine's memory.
pub fn start_mock_ld(
    bin: &Path,
    args: &[String],
    address_space: Option<u64>,
) -> Result<MockLdProcess, String> {
    let mut command = match address_space {
        Some(bytes) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--as={bytes}")).arg("--").arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--heartbeat-secs", "60"])
        .args(args)
        .env("RUST_LOG", "mock_ld=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let mut process = MockLdProcess {
        child,
        base_url: String::new(),
    };
    let line = match first {
        Some(Ok(line)) => line,
        other => return Err(format!("mock-ld printed no first line: {other:?}")),
    };
    let url = line
        .strip_prefix("mock-ld listening on ")
        .ok_or_else(|| format!("unexpected first line from mock-ld: {line:?}"))?
        .trim()
        .to_owned();
    process.base_url = url;
    Ok(process)
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, …), in KiB; 0 if unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    kib_field(&status, field)
}

fn kib_field(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// AnonHugePages of a process, in KiB: the part of its RSS in 2 MiB transparent huge pages,
/// which makes RSS grow in 2 MiB steps.
pub fn huge_kib(pid: u32) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    kib_field(&rollup, "AnonHugePages")
}

/// CPU time of every thread of a process so far (from `/proc/PID/task/*/schedstat`, ns).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------------
// Raw SSE streams
// ---------------------------------------------------------------------------------------

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Chunked transfer decoding, fed incrementally.
#[derive(Default)]
pub struct Dechunker {
    raw: Vec<u8>,
    /// Bytes still due in the current chunk (plus its CRLF), or `None` before a size line.
    remaining: Option<usize>,
}

impl Dechunker {
    /// Moves decoded bytes into `out`; `false` once the last chunk arrived.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        self.raw.extend_from_slice(input);
        let mut pos = 0;
        let mut open = true;
        loop {
            match self.remaining {
                None => {
                    let Some(eol) = find(&self.raw[pos..], b"\r\n") else {
                        break;
                    };
                    let line = std::str::from_utf8(&self.raw[pos..pos + eol]).unwrap_or("");
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                            .unwrap_or(0);
                    pos += eol + 2;
                    if size == 0 {
                        open = false;
                        break;
                    }
                    self.remaining = Some(size + 2);
                }
                Some(due) => {
                    let available = self.raw.len() - pos;
                    if available == 0 {
                        break;
                    }
                    let take = due.min(available);
                    // The last two bytes of a chunk are its CRLF.
                    let data_end = (pos + take).min(pos + due.saturating_sub(2));
                    if data_end > pos {
                        out.extend_from_slice(&self.raw[pos..data_end]);
                    }
                    pos += take;
                    self.remaining = if take == due { None } else { Some(due - take) };
                }
            }
        }
        self.raw.drain(..pos);
        open
    }
}

/// Opens `GET /all` on `addr` and calls `on_frame` with every complete SSE frame (without
/// its blank line) and when its last byte was read, until `stop` turns true (`Ok`) or the
/// stream fails or ends (`Err`). `read_buffer` bytes are read at a time.
pub async fn read_sse(
    addr: &str,
    user_agent: &str,
    read_buffer: usize,
    mut stop: watch::Receiver<bool>,
    mut on_frame: impl FnMut(&[u8], Instant),
) -> Result<(), String> {
    let mut socket = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    socket.set_nodelay(true).ok();
    let request = format!(
        "GET /all HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {SDK_KEY}\r\nAccept: text/event-stream\r\nUser-Agent: {user_agent}\r\n\r\n"
    );
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;

    let mut buf = vec![0u8; read_buffer];
    let mut head = Vec::new();
    let mut dechunker = Dechunker::default();
    let mut sse = Vec::new();
    let mut in_body = false;
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.changed() => return Ok(()),
            read = socket.read(&mut buf) => read.map_err(|e| format!("read: {e}"))?,
        };
        let now = Instant::now();
        if n == 0 {
            return if *stop.borrow() {
                Ok(())
            } else {
                Err("stream closed by mock-ld".into())
            };
        }
        let mut body = &buf[..n];
        if !in_body {
            head.extend_from_slice(body);
            let Some(end) = find(&head, b"\r\n\r\n") else {
                continue;
            };
            let headers = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            if !headers.starts_with("http/1.1 200") {
                return Err(format!("unexpected response: {headers}"));
            }
            if !headers.contains("transfer-encoding: chunked") {
                return Err(format!("expected a chunked stream: {headers}"));
            }
            in_body = true;
            let rest = head.split_off(end + 4);
            head = Vec::new();
            dechunker.feed(&rest, &mut sse);
            body = &[];
        }
        if !body.is_empty() && !dechunker.feed(body, &mut sse) {
            return Err("stream ended".into());
        }
        // Complete frames end with an empty line.
        let mut consumed = 0;
        while let Some(end) = find(&sse[consumed..], b"\n\n") {
            on_frame(&sse[consumed..consumed + end], now);
            consumed += end + 2;
        }
        sse.drain(..consumed);
        if sse.capacity() > 4 * read_buffer && sse.is_empty() {
            // A large frame (the first `put`) need not stay allocated for the stream's life.
            sse = Vec::new();
        }
    }
}

/// The `p`th percentile of sorted samples (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// A ~2 KB AI Config flag `key`, as both benches send it: three JSON variations, a 60/40
/// rollout rule for premium users, fallthrough to the mini model. Every variation carries
/// `tag` (the change's sequence number, which readers look for) and version `seq`.
pub fn ai_config_flag(key: &str, tag: &str, seq: usize) -> serde_json::Value {
    let variation = |key: &str, model: &str, provider: &str, temperature: f64| {
        serde_json::json!({
            "_ldMeta": {"enabled": true, "variationKey": key, "version": seq, "mode": "completion", "benchTag": tag},
            "model": {"name": model, "parameters": {"temperature": temperature, "maxTokens": 1024, "topP": 0.9}},
            "provider": {"name": provider},
            "messages": [
                {"role": "system", "content": "You are a concise, friendly support assistant for {{ ldctx.tier }} customers of ACME Cloud. Answer in the user's language, cite the relevant documentation page, and never reveal internal ticket notes."},
                {"role": "user", "content": "{{ question }}"}
            ]
        })
    };
    serde_json::json!({
        "key": key,
        "on": true,
        "salt": "b3c1f0e2d4a5",
        "trackEvents": false,
        "variations": [
            variation("premium-gpt4o", "gpt-4o", "openai", 0.2),
            variation("premium-claude", "claude-3-5-sonnet", "anthropic", 0.3),
            variation("standard-mini", "gpt-4o-mini", "openai", 0.5)
        ],
        "offVariation": 2,
        "fallthrough": {"variation": 2},
        "rules": [{
            "id": "premium-split",
            "clauses": [{"contextKind": "user", "attribute": "tier", "op": "in", "values": ["premium"], "negate": false}],
            "rollout": {"variations": [{"variation": 0, "weight": 60000}, {"variation": 1, "weight": 40000}], "bucketBy": "key"},
            "trackEvents": false
        }]
    })
}
