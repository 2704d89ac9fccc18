//! The embedded mock-ld a run starts when it has no target, and what `[[restarts]]` do to
//! it: stopped at once (as `kill -9` stops a process: no shutdown, no snapshot) and started
//! again on the same port with the same configuration and `--state` directory, so the SDKs'
//! URL and key still hold and everything its journals acknowledged is back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_ld::events::log::EventLog;
use mock_ld::isolated::IsolatedMockLd;
use mock_ld::StartError;
use tokio::sync::Mutex;

/// How long a start again tries to bind the port the stopped one let go (the kernel may
/// take a moment to release it).
const REBIND_WAIT: Duration = Duration::from_secs(10);

/// A restartable embedded mock-ld.
pub struct EmbeddedMock {
    /// `None` while stopped.
    mock: Mutex<Option<IsolatedMockLd>>,
    /// Its configuration with the port it first bound, for starting again.
    config: mock_ld::Config,
    /// Where its state lives when it may restart; removed with it.
    _state: Option<tempfile::TempDir>,
}

impl EmbeddedMock {
    /// Starts mock-ld with `config`; with `restartable`, in a state directory of its own,
    /// so that a restart keeps what it had.
    pub async fn start(mut config: mock_ld::Config, restartable: bool) -> Result<Self, StartError> {
        let state = match restartable {
            true => Some(tempfile::tempdir().map_err(StartError::Runtime)?),
            false => None,
        };
        config.state_dir = state.as_ref().map(|d| d.path().to_owned());
        let mock = IsolatedMockLd::start(config.clone()).await?;
        config.listen = mock.addr();
        Ok(EmbeddedMock {
            mock: Mutex::new(Some(mock)),
            config,
            _state: state,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.config.listen
    }

    /// Runs `f` on the running mock-ld (`None` while it is stopped).
    pub async fn with<T>(&self, f: impl FnOnce(&IsolatedMockLd) -> T) -> Option<T> {
        self.mock.lock().await.as_ref().map(f)
    }

    /// Stops it at once ([`IsolatedMockLd::kill`]: its server and tasks are dropped, open
    /// connections cut); its event log once nothing of it runs any more, which then holds
    /// exactly what it took. `None` when it was stopped already or something of it still
    /// ran after the wait.
    pub async fn stop(&self) -> Option<Arc<EventLog>> {
        let mock = self.mock.lock().await.take()?;
        mock.kill().await
    }

    /// Starts it again on its port, from its state directory.
    pub async fn start_again(&self) -> Result<(), StartError> {
        let deadline = Instant::now() + REBIND_WAIT;
        let mock = loop {
            match IsolatedMockLd::start(self.config.clone()).await {
                Err(StartError::Bind { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrInUse
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => break other?,
            }
        };
        *self.mock.lock().await = Some(mock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// A restart keeps what the run's event accounting needs: the events refused by a
    /// fault before it (`refusedEvents`), and exactly the events taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_keeps_the_refused_events_and_the_taken_ones() {
        let mock = EmbeddedMock::start(mock_ld::Config::default(), true)
            .await
            .unwrap();
        let (base, http) = (format!("http://{}", mock.addr()), reqwest::Client::new());
        let post = |id: &str| {
            http.post(format!("{base}/bulk"))
                .header("Authorization", "sdk-default-test")
                .header("X-LaunchDarkly-Payload-ID", id)
                .json(&json!([{"kind": "custom", "key": "k"}, {"kind": "custom", "key": "k"}]))
                .send()
        };
        let on: Value = http
            .post(format!("{base}/admin/faults"))
            .json(&json!({"kind": "eventsError"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(post("refused").await.unwrap().status().is_server_error());
        let off = format!("{base}/admin/faults/{}", on["id"]);
        assert!(http.delete(off).send().await.unwrap().status().is_success());
        assert_eq!(post("taken").await.unwrap().status(), 202);
        let refused = || async {
            let faults: Value = http
                .get(format!("{base}/admin/faults"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            faults["refusedEvents"][0].clone()
        };
        let before = refused().await;
        assert_eq!(before["refusedEvents"], 2, "{before}");
        let log = mock
            .stop()
            .await
            .expect("nothing of it runs after the stop");
        let filter = mock_ld::events::log::Filter {
            env: Some("test".into()),
            ..Default::default()
        };
        assert_eq!(log.stats(&filter).events, 2, "the taken payload's events");
        mock.start_again().await.unwrap();
        assert_eq!(refused().await, before);
        // The SDK's retry of the payload refused before the restart is a retry.
        assert_eq!(post("refused").await.unwrap().status(), 202);
        assert_eq!(refused().await["retriedEvents"], 2);
    }
}
