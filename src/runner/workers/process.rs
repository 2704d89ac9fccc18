//! One worker process: started with piped stdio, spoken to in JSON lines, its stderr kept
//! (the newest [`STDERR_TAIL`] bytes) for the message when it fails. Dropping it kills it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::protocol::{FromWorker, ToWorker};

/// A worker that says nothing, or reads nothing, for this long while it has work is taken
/// for hung (workers report progress every 250 ms, and read their input on arrival).
pub const SILENCE: Duration = Duration::from_secs(30);

/// How much of a worker's stderr a failure message quotes.
pub const STDERR_TAIL: usize = 64 * 1024;
/// The longest line a worker may write: a result holds a histogram per variation and stage,
/// a few kilobytes each.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// How to start a worker: a program and its arguments, in a directory, with extra
/// environment.
#[derive(Clone, Debug)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Why a worker cannot go on; the run is aborted with it.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker {index} could not be started ({program}): {error}")]
    Spawn {
        index: usize,
        program: String,
        error: std::io::Error,
    },
    #[error("worker {index} {what}{}", stderr_note(.stderr))]
    Failed {
        index: usize,
        what: String,
        stderr: String,
    },
}

fn stderr_note(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; its stderr ends:\n{}", stderr.trim_end())
    }
}

pub struct WorkerProcess {
    pub index: usize,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: Vec<u8>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    /// The task that reads stderr: awaited (briefly) before quoting it, so that the last
    /// lines of a crash are in the message.
    stderr_reader: tokio::task::JoinHandle<()>,
}

impl WorkerProcess {
    pub fn spawn(index: usize, launch: &Launch) -> Result<Self, WorkerError> {
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| WorkerError::Spawn {
            index,
            program: launch.program.display().to_string(),
            error,
        })?;
        let (stdin, stdout, stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_reader = tokio::spawn(keep_tail(index, stderr, tail.clone()));
        Ok(WorkerProcess {
            index,
            child,
            stdin,
            stdout: BufReader::with_capacity(1 << 16, stdout),
            line: Vec::new(),
            stderr: tail,
            stderr_reader,
        })
    }

    /// Writes one message; a worker that reads none of it for `SILENCE` has stopped
    /// reading (a batch is larger than the pipe's buffer).
    pub async fn send(&mut self, message: &ToWorker<'_>) -> Result<(), WorkerError> {
        let mut line = serde_json::to_vec(message).expect("protocol messages serialize");
        line.push(b'\n');
        let write = async {
            self.stdin.write_all(&line).await?;
            self.stdin.flush().await
        };
        match tokio::time::timeout(SILENCE, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.failed(format!("stopped reading its input ({e})"))),
            Err(_) => Err(self.failed(format!(
                "read none of its input for {} s",
                SILENCE.as_secs()
            ))),
        }
    }

    /// Reads the next message, waiting at most `patience`.
    pub async fn receive(&mut self, patience: Duration) -> Result<FromWorker, WorkerError> {
        self.line.clear();
        let mut limited = (&mut self.stdout).take(MAX_LINE as u64 + 1);
        let read = limited.read_until(b'\n', &mut self.line);
        let n = match tokio::time::timeout(patience, read).await {
            Err(_) => {
                return Err(self.failed(format!(
                    "sent nothing for {} s while it had work",
                    patience.as_secs()
                )))
            }
            Ok(Err(e)) => return Err(self.failed(format!("output could not be read ({e})"))),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            let status = self.exit_status().await;
            return Err(self.failed(format!("exited before the run ended ({status})")));
        }
        if self.line.len() > MAX_LINE {
            return Err(self.failed(format!("wrote a line longer than {MAX_LINE} bytes")));
        }
        match serde_json::from_slice::<FromWorker>(&self.line) {
            Ok(FromWorker::Error { message }) => Err(self.failed(format!("failed: {message}"))),
            Ok(message) => Ok(message),
            Err(e) => {
                let shown = String::from_utf8_lossy(&self.line[..self.line.len().min(200)]);
                Err(self.failed(format!(
                    "wrote a line that is not a protocol message ({e}): {}",
                    shown.trim_end()
                )))
            }
        }
    }

    /// Waits for the process to end after `close`, killing it after `patience`.
    pub async fn wait(mut self, patience: Duration) -> Result<(), WorkerError> {
        drop(self.stdin);
        let exited = tokio::time::timeout(patience, self.child.wait()).await;
        drain(&mut self.stderr_reader).await;
        match exited {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(failed(
                self.index,
                &self.stderr,
                format!("exited with {status}"),
            )),
            Ok(Err(e)) => Err(failed(self.index, &self.stderr, e.to_string())),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(failed(
                    self.index,
                    &self.stderr,
                    format!("did not exit within {} s of close", patience.as_secs()),
                ))
            }
        }
    }

    async fn exit_status(&mut self) -> String {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            _ => "still running with its output closed".to_owned(),
        };
        drain(&mut self.stderr_reader).await;
        status
    }

    fn failed(&self, what: String) -> WorkerError {
        failed(self.index, &self.stderr, what)
    }
}

/// Waits a moment for the stderr reader to reach the end of a process that exited.
async fn drain(reader: &mut tokio::task::JoinHandle<()>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
}

fn failed(index: usize, stderr: &Mutex<VecDeque<u8>>, what: String) -> WorkerError {
    let tail = stderr.lock().unwrap_or_else(|p| p.into_inner());
    let (a, b) = tail.as_slices();
    let stderr = String::from_utf8_lossy(&[a, b].concat()).into_owned();
    WorkerError::Failed {
        index,
        what,
        stderr,
    }
}

/// Keeps the newest [`STDERR_TAIL`] bytes of a worker's stderr, and passes its lines to
/// the log at debug level (`RUST_LOG=aiconfig_harness=debug`).
async fn keep_tail(
    index: usize,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<u8>>>,
) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut lines)
            .take(STDERR_TAIL as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        tracing::debug!(
            worker = index,
            "{}",
            String::from_utf8_lossy(&line).trim_end()
        );
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.extend(&line);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
    }
}
