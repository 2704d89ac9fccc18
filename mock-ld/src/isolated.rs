//! mock-ld on a tokio runtime of its own, for embedding beside a load generator.
//!
//! On the embedder's runtime, mock-ld's tasks (the simulated provider's timers, its SSE
//! chunks, event intake) queue behind the load generator's, so a latency it serves includes
//! the generator being busy. On its own worker threads, it is scheduled by the kernel like
//! any other process's threads (benches/isolation.rs measures the difference;
//! ARCHITECTURE.md has the figures and why this beat a child process).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::events::log::EventLog;
use crate::{Config, MockLd, MockLdHandle, StartError};

/// Names the runtime's threads, so `top -H` and profiles tell them from the embedder's.
const THREAD_NAME: &str = "mock-ld";
/// How long [`IsolatedMockLd::kill`] waits for work on the blocking pool to end: an events
/// payload being inflated, recorded and fsynced (well under a second at the largest the
/// bounds allow), a snapshot being written.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// A mock-ld serving from its own runtime. Dereferences to its [`MockLdHandle`]. Dropping
/// it stops the server and lets the runtime's threads go without waiting for them.
pub struct IsolatedMockLd {
    handle: Option<MockLdHandle>,
    runtime: Option<Runtime>,
}

impl IsolatedMockLd {
    /// Starts mock-ld on a new multi-thread runtime with a worker per core, as many as the
    /// embedder's default runtime has, so that mock-ld can use the whole machine when the
    /// embedder is idle. Call it from async code: the start runs on the new runtime and is
    /// awaited here.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let mut isolated = IsolatedMockLd {
            handle: None,
            runtime: Some(runtime),
        };
        let started = isolated.runtime().spawn(MockLd::start(config)).await;
        let handle = started.map_err(|e| StartError::Runtime(std::io::Error::other(e)))??;
        isolated.handle = Some(handle);
        Ok(isolated)
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Stops it as `kill -9` would stop a process (no graceful shutdown, no snapshot: every
    /// task is dropped, every connection cut) and returns once nothing of it runs any
    /// more: its event log then holds exactly the events of the payloads it took, each of
    /// them journaled with `--state` (unless the journal was full or failed).
    ///
    /// Why that is exact: a payload is recorded and journaled in one closure on the blocking
    /// pool, which runs to its end once started (dropping a task cannot cut it) and which
    /// the runtime's shutdown waits for; the 202 is sent after it. So a payload's events are
    /// in the log and the journal alike, or in neither. One taken whose 202 the kill cut
    /// off is counted: its SDK's one retry (a second later, under the same payload id) is a
    /// duplicate if mock-ld is back by then, and fails otherwise.
    ///
    /// `None` when something of it still ran after [`KILL_WAIT`] (a count read then could
    /// still move).
    pub async fn kill(mut self) -> Option<Arc<EventLog>> {
        let handle = self.handle.take()?;
        let events = handle.events().clone();
        drop(handle);
        let runtime = self.runtime.take()?;
        // Waiting for the runtime's threads blocks, which async code must not do.
        let stopped = tokio::task::spawn_blocking(move || runtime.shutdown_timeout(KILL_WAIT));
        stopped.await.ok()?;
        // Every task and closure that could record held a clone; none is left.
        (Arc::strong_count(&events) == 1).then_some(events)
    }

    /// [`MockLdHandle::shutdown`] on mock-ld's runtime (streams end, a `--state` snapshot
    /// is written), then the runtime's threads are released.
    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.runtime().spawn(handle.shutdown()).await;
        }
    }
}

impl Deref for IsolatedMockLd {
    type Target = MockLdHandle;

    fn deref(&self) -> &MockLdHandle {
        self.handle
            .as_ref()
            .expect("a started mock-ld has a handle")
    }
}

impl Drop for IsolatedMockLd {
    fn drop(&mut self) {
        // The handle's own drop cancels the server; dropping a runtime blocks, which async
        // code must not do, so its threads are let go in the background.
        drop(self.handle.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn serves_from_its_own_threads_and_stops_on_shutdown() {
        let mock = IsolatedMockLd::start(Config::default()).await.unwrap();
        let addr = mock.addr();
        // This test's runtime has one thread, blocked in `join` here: only mock-ld's own
        // threads can answer the request.
        let status = std::thread::spawn(move || http_status(addr, "/sdk/latest-all"))
            .join()
            .unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK");
        mock.shutdown().await;
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the listener is closed after shutdown"
        );
    }

    /// A kill returns once nothing of mock-ld runs: its log then holds what it took, and
    /// no one else holds the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kill_returns_the_log_once_nothing_of_it_runs() {
        let nanos = crate::clock::now_millis();
        let dir = std::env::temp_dir().join(format!("mock-ld-kill-{}-{nanos}", std::process::id()));
        let config = Config {
            state_dir: Some(dir.clone()),
            ..Config::default()
        };
        let mock = IsolatedMockLd::start(config).await.unwrap();
        let addr = mock.addr();
        let body = r#"[{"kind": "custom", "key": "a"}, {"kind": "custom", "key": "b"}]"#;
        let status = tokio::task::spawn_blocking(move || http_post(addr, "/bulk", body))
            .await
            .unwrap();
        assert_eq!(status, "HTTP/1.1 202 Accepted");
        let log = mock
            .kill()
            .await
            .expect("nothing of it runs after the kill");
        let filter = crate::events::log::Filter {
            env: Some("test".into()),
            ..Default::default()
        };
        assert_eq!(log.stats(&filter).events, 2);
        std::fs::remove_dir_all(dir).ok();
    }

    /// The status line of a blocking POST of `body` with the default SDK key.
    fn http_post(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: sdk-default-test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// The status line of a blocking GET with the default SDK key.
    fn http_status(addr: std::net::SocketAddr, path: &str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: sdk-default-test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    #[tokio::test]
    async fn a_failed_start_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = Config {
            listen: taken.local_addr().unwrap(),
            ..Config::default()
        };
        let error = IsolatedMockLd::start(config).await.err().unwrap();
        assert!(
            error
                .to_string()
                .contains(&taken.local_addr().unwrap().to_string()),
            "{error}"
        );
    }
}
