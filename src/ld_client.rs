//! Building the real LaunchDarkly Rust SDK client against mock-ld, a Relay Proxy or
//! LaunchDarkly itself.
//!
//! The SDK is built with rustls and webpki roots. The streaming data source and the event
//! processor each get a transport of their own, which speaks plain HTTP and HTTPS and goes
//! through a proxy only when its URL is not loopback.

use std::time::Duration;

use launchdarkly_sdk_transport::{HttpTransport, HyperTransport};
use launchdarkly_server_sdk::{
    Client, ConfigBuilder, EventProcessorBuilder, NullEventProcessorBuilder,
    ServiceEndpointsBuilder, StreamingDataSourceBuilder,
};

/// How one SDK client is set up.
/// The Rust SDK's version, as `Cargo.toml` pins it (`=3.2.0`); a test checks `Cargo.lock`.
pub const SDK_VERSION: &str = "3.2.0";

#[derive(Clone, Debug)]
pub struct SdkOptions {
    /// Base URL of streaming, polling and events alike (mock-ld or a Relay Proxy), unless
    /// `stream_url` or `events_url` say otherwise.
    pub base_url: String,
    /// LaunchDarkly's own service has a host per service (the EU instance:
    /// `https://stream.eu.launchdarkly.com`, `https://events.eu.launchdarkly.com`).
    pub stream_url: Option<String>,
    pub events_url: Option<String>,
    pub sdk_key: String,
    /// `None` turns analytics events off.
    pub events: Option<EventOptions>,
}

/// Event processor settings. The SDK's default capacity of 500 silently drops events under
/// load, so runs size it to what they send.
#[derive(Clone, Debug)]
pub struct EventOptions {
    pub capacity: usize,
    pub flush_interval: Duration,
}

impl Default for EventOptions {
    fn default() -> Self {
        EventOptions {
            capacity: 100_000,
            flush_interval: Duration::from_secs(5),
        }
    }
}

/// Why a client could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("cannot create the HTTP transport: {0}")]
    Transport(#[from] std::io::Error),
    #[error("invalid SDK configuration: {0}")]
    Config(String),
    #[error("the SDK did not initialize from {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("the SDK failed to initialize from {url} (a wrong SDK key gets 401, which ends the stream for good)")]
    Failed { url: String },
}

/// A client that has received its first `put`, ready to evaluate.
pub async fn start_client(options: &SdkOptions, timeout: Duration) -> Result<Client, SdkError> {
    let started = start_waiting(options, timeout).await?;
    match started.initialized {
        true => Ok(started.client),
        false => Err(SdkError::Timeout {
            url: options.base_url.clone(),
            timeout,
        }),
    }
}

/// A started client and how its initialization went within the application's wait.
pub struct Started {
    pub client: Client,
    /// How long `wait_for_initialization` took: the wait itself when it timed out.
    pub waited: Duration,
    /// It initialized within the wait; when not, it keeps trying in the background and
    /// serves the fallback meanwhile.
    pub initialized: bool,
}

/// Starts a client and waits at most `timeout` for it, as an application does at start-up;
/// a timeout is no error here (`initialized: false`), a refusal (`Some(false)`) is.
pub async fn start_waiting(options: &SdkOptions, timeout: Duration) -> Result<Started, SdkError> {
    let client = build_client(options)?;
    client.start_with_default_executor();
    let begun = std::time::Instant::now();
    let outcome = client.wait_for_initialization(timeout).await;
    let waited = begun.elapsed();
    match outcome {
        Some(true) => Ok(Started {
            client,
            waited,
            initialized: true,
        }),
        Some(false) => Err(SdkError::Failed {
            url: options.base_url.clone(),
        }),
        None => Ok(Started {
            client,
            waited,
            initialized: false,
        }),
    }
}

/// A client that has not been started.
pub fn build_client(options: &SdkOptions) -> Result<Client, SdkError> {
    let stream_url = options.stream_url.as_deref().unwrap_or(&options.base_url);
    let events_url = options.events_url.as_deref().unwrap_or(&options.base_url);
    let mut endpoints = ServiceEndpointsBuilder::new();
    endpoints
        .polling_base_url(&options.base_url)
        .streaming_base_url(stream_url)
        .events_base_url(events_url);
    let mut streaming = StreamingDataSourceBuilder::new();
    streaming.transport(transport_for(stream_url)?);
    let mut builder = ConfigBuilder::new(&options.sdk_key)
        .service_endpoints(&endpoints)
        .data_source(&streaming);
    builder = match &options.events {
        Some(events) => {
            let mut processor = EventProcessorBuilder::new();
            processor
                .transport(transport_for(events_url)?)
                .capacity(events.capacity)
                .flush_interval(events.flush_interval);
            builder.event_processor(&processor)
        }
        None => builder.event_processor(&NullEventProcessorBuilder::new()),
    };
    let config = builder
        .build()
        .map_err(|e| SdkError::Config(e.to_string()))?;
    Client::build(config).map_err(|e| SdkError::Config(e.to_string()))
}

/// The SDK's transport to `url`, plain HTTP or HTTPS as it asks. The SDK honours
/// `HTTP_PROXY` even for loopback; a local mock-ld must be reached directly.
fn transport_for(url: &str) -> std::io::Result<impl HttpTransport> {
    let builder = HyperTransport::builder();
    let builder = if is_loopback(url) {
        builder.disable_proxy()
    } else {
        builder.auto_proxy()
    };
    builder.build_https()
}

fn is_loopback(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sdk_version_is_the_locked_one() {
        let lock = include_str!("../Cargo.lock");
        let entry = format!(
            "name = \"launchdarkly-server-sdk\"\nversion = \"{}\"",
            super::SDK_VERSION
        );
        assert!(
            lock.contains(&entry),
            "Cargo.lock has another launchdarkly-server-sdk"
        );
    }

    use super::*;

    #[test]
    fn loopback_urls_bypass_proxies() {
        assert!(is_loopback("http://127.0.0.1:8765"));
        assert!(is_loopback("http://localhost:1"));
        assert!(is_loopback("http://[::1]:1"));
        assert!(!is_loopback("https://sdk.launchdarkly.com"));
    }
}
