//! Setting a scenario up through the REST API twice against the same target: model configs
//! made by the first run are kept, and the AI Config left from it is an error that says
//! what exists and how to get past it, with nothing deleted.

use aiconfig_harness::results::RunResults;
use aiconfig_harness::runner::{self, RunError, RunOptions, Target};
use aiconfig_harness::scenario::{self, Scenario};
use mock_ld::{MockLd, MockLdHandle};

const SCENARIO: &str = r#"
name = "twice"
[[ai_configs]]
key = "assistant"
[[ai_configs.variations]]
key = "small"
model = { name = "gpt-4o-mini" }
messages = [{ role = "system", content = "Be brief." }]
[population]
count = 10
[[steps]]
config = "assistant"
call_llm = false
"#;

/// Runs `s` against `mock` as an external target (its `test` environment), passing
/// `admin_token` on.
async fn run_on(
    mock: &MockLdHandle,
    s: &Scenario,
    admin_token: Option<&str>,
) -> Result<RunResults, RunError> {
    let target = Target::in_process(mock, ("default", "test"), admin_token)
        .expect("mock-ld's default environment");
    let options = RunOptions::quiet(target);
    runner::run(s, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_target_names_the_leftover_ai_config() {
    let mock = MockLd::start(mock_ld::Config::default()).await.unwrap();
    let s = scenario::parse("twice.toml".as_ref(), SCENARIO).unwrap();
    let run = || run_on(&mock, &s, None);
    let first = run().await.expect("the first run sets everything up");
    assert_eq!(first.load.requests, 10);

    let Err(RunError::Setup(e)) = run().await else {
        panic!("the second run must fail at setup");
    };
    let message = e.to_string();
    assert!(
        message.starts_with("POST /api/v2/projects/default/ai-configs: 409"),
        "the model config is kept, the AI Config is the conflict: {message}"
    );
    assert!(
        message.contains("AI Config `assistant` exists already")
            && message.contains("fresh mock-ld"),
        "{message}"
    );
    mock.shutdown().await;
}

/// A mock-ld with an admin token: a run without it stops at setup, saying how to pass it
/// (its events would otherwise go unverified); with it, the run verifies its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mock_ld_with_an_admin_token_needs_it_and_gets_it_passed_on() {
    let mock = MockLd::start(mock_ld::Config {
        admin_token: Some("admin-token-for-the-test".into()),
        ..mock_ld::Config::default()
    })
    .await
    .unwrap();
    let s = scenario::parse("twice.toml".as_ref(), SCENARIO).unwrap();
    let Err(e) = run_on(&mock, &s, None).await else {
        panic!("a run without the admin token must stop");
    };
    assert!(e.to_string().contains("--admin-token"), "{e}");
    let results = run_on(&mock, &s, Some("admin-token-for-the-test"))
        .await
        .unwrap();
    let events = results.events.expect("events verified through /admin");
    assert!(events.complete, "{events:?}");
    mock.shutdown().await;
}
