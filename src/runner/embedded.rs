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
