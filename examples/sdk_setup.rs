//! Rust: the server SDK against mock-ld (`mock-ld --data scenarios/demo-data.yaml`), FDv1
//! streaming (SDK 3.2.0 has no FDv2). There is no Rust AI SDK: an AI Config is a JSON flag
//! whose value is what the Python and Node AI SDKs read.

use std::time::Duration;

use launchdarkly_sdk_transport::HyperTransport;
use launchdarkly_server_sdk::{
    Client, ConfigBuilder, ContextBuilder, EventProcessorBuilder, ServiceEndpointsBuilder,
    StreamingDataSourceBuilder,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock_ld = std::env::var("MOCK_LD_URL").unwrap_or("http://127.0.0.1:8765".into());
    let sdk_key = std::env::var("MOCK_LD_SDK_KEY").unwrap_or("sdk-default-test".into());

    let mut endpoints = ServiceEndpointsBuilder::new();
    // Polling, streaming and events all at mock-ld's one URL.
    endpoints.relay_proxy(&mock_ld);
    // Plain HTTP on loopback, not through any HTTP_PROXY.
    let transport = || HyperTransport::builder().disable_proxy().build_https();
    let mut streaming = StreamingDataSourceBuilder::new();
    streaming.transport(transport()?);
    let mut events = EventProcessorBuilder::new();
    events.transport(transport()?);
    let config = ConfigBuilder::new(&sdk_key)
        .service_endpoints(&endpoints)
        .data_source(&streaming)
        .event_processor(&events)
        .build()?;
    let client = Client::build(config)?;
    client.start_with_default_executor();
    if client.wait_for_initialization(Duration::from_secs(5)).await != Some(true) {
        return Err(format!("the SDK did not initialize against {mock_ld}").into());
    }

    let context = ContextBuilder::new("qa-alice")
        .set_value("company", "Acme".into())
        .build()?;
    let value = client.json_variation(&context, "support-assistant", serde_json::json!({}));
    let (model, provider) = (&value["model"]["name"], &value["provider"]["name"]);
    println!(
        "support-assistant for qa-alice: {} ({})",
        model.as_str().unwrap_or("?"),
        provider.as_str().unwrap_or("?")
    );

    client.flush_blocking(Duration::from_secs(5)).await; // the evaluation's summary event
    client.close();
    Ok(())
}
