//! `[[restarts]]` end to end: the embedded mock-ld is stopped at once mid-run (as `kill -9`
//! stops a process) and started again on the same port from its state directory. Exactly
//! the events it had taken before are read back after; the SDK's stream comes back; the
//! simulated provider, which is not restarted, answers throughout; and every tracker event
//! is accounted for (received, or never received: sent while mock-ld was down). A restart
//! against another target is refused before anything starts.

use aiconfig_harness::runner::{self, RunError, RunOptions, Target};
use aiconfig_harness::scenario;

/// 40 requests/s for 11 s, events flushed every 500 ms, mock-ld down from 3 s to 5 s.
const SCENARIO: &str = r#"
name = "restart"
seed = 9

[[ai_configs]]
key = "assistant"

[[ai_configs.variations]]
key = "only"
model = { name = "model-a" }
messages = [{ role = "system", content = "You are terse." }]

[[ai_configs.targeting]]
kind = "updateFallthroughVariationOrRollout"
variation = "only"

[population]
count = 200

[load]
model = "open"
rate = 40
duration = "11s"

[load.events]
flush_interval = "500ms"

[load.overload]
lag_p99 = "1h"
memory_pressure = 1.0

[llm.models.model-a]
latency = { median = "10ms", p99 = "10ms" }
output_tokens = { median = 5, p99 = 5 }

[[restarts]]
at = "3s"
down = "2s"
description = "mock-ld killed and started again"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_received_before_a_restart_are_still_counted_and_every_event_is_accounted_for() {
    let s = scenario::parse("restart.toml".as_ref(), SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let results = runner::run(&s, RunOptions::quiet(Target::Embedded))
        .await
        .unwrap();
    let restart = &results.restarts[0];
    println!("{restart:?}");
    assert!(restart.error.is_none(), "{restart:?}");
    let (stopped, started) = (restart.stopped_ms.unwrap(), restart.started_ms.unwrap());
    assert!(started - stopped >= 2000.0, "{restart:?}");
    assert!(restart.events_before.unwrap() > 0, "{restart:?}");
    // Read once mock-ld had stopped: exactly what it read back, not merely as many.
    assert_eq!(restart.events_after, restart.events_before, "{restart:?}");
    assert_eq!(restart.events_kept(), Some(true), "{restart:?}");
    // The one SDK client's stream ended with mock-ld and came back to the new one.
    assert_eq!(restart.streams_before, Some(1), "{restart:?}");
    assert!(restart.streams_back_ms.is_some(), "{restart:?}");
    // The provider was up throughout: no LLM call failed.
    let calls = results.configs["assistant"].variations.values();
    let (ok, errors) = calls.fold((0, 0), |(ok, e), v| (ok + v.successes, e + v.errors));
    assert!(ok > 0 && errors == 0, "{ok} succeeded, {errors} failed");
    let a = results.event_accounting.expect("eventAccounting");
    println!("{a:?}");
    assert_eq!(a.refused, 0, "{a:?}");
    assert_eq!(a.tracked, a.received + a.never_received, "{a:?}");
    // Payloads sent while mock-ld was down failed twice (the SDK's one retry) and were
    // dropped: never received.
    assert!(a.never_received > 0, "{a:?}");
    assert!(a.received > 0, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_against_another_target_is_an_input_error() {
    let s = scenario::parse("restart.toml".as_ref(), SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let target = Target::External {
        sdk_url: "http://127.0.0.1:9".into(),
        stream_url: None,
        events_url: None,
        api_url: "http://127.0.0.1:9".into(),
        sdk_key: "sdk-key".into(),
        api_token: "api-token".into(),
        admin_token: None,
    };
    match runner::run(&s, RunOptions::quiet(target)).await {
        Err(RunError::Input(message)) => assert!(message.contains("restarts[0]"), "{message}"),
        other => panic!("{:?}", other.map(|r| r.verdict)),
    }
}

/// Ctrl-C while mock-ld is down for an hour: mock-ld is started again at once, the run
/// ends (interrupted) with its events flushed to it, and the window says when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_mock_ld_is_down_starts_it_again_at_once() {
    const DESCRIPTION: &str = "down for an hour, until Ctrl-C";
    let long = SCENARIO
        .replace("at = \"3s\"\ndown = \"2s\"", "at = \"1s\"\ndown = \"1h\"")
        .replace("mock-ld killed and started again", DESCRIPTION);
    let s = scenario::parse("restart.toml".as_ref(), &long).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.warnings.len(), 1, "outlasting the load: {:?}", s.warnings);
    let options = RunOptions::quiet(Target::Embedded);
    // Ctrl-C as soon as the harness logs that it stopped mock-ld, however long the set-up
    // before the load took.
    let ctrl_c = options.cancel.clone();
    on_stop::install(DESCRIPTION, move || ctrl_c.cancel());
    let results =
        tokio::time::timeout(std::time::Duration::from_secs(90), runner::run(&s, options))
            .await
            .expect("the run ends without waiting out `down`")
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        results.status,
        aiconfig_harness::results::verdict::RunStatus::Interrupted
    );
    let restart = &results.restarts[0];
    assert!(restart.error.is_none(), "{restart:?}");
    assert!(restart.started_ms.is_some(), "{restart:?}");
    // Started again for the final flush: the events sent after it were received.
    let events = results.events.as_ref().expect("events");
    assert!(events.payloads > 0, "{events:?}");
}

/// A log layer that calls back when the harness logs "mock-ld stopped" for the restart
/// with a given description (tests of this file run at once: each has its own).
mod on_stop {
    use std::fmt::Debug;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;

    struct OnStop<F> {
        description: &'static str,
        then: F,
    }

    #[derive(Default)]
    struct Fields {
        message: String,
        description: String,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "description" {
                value.clone_into(&mut self.description);
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            if field.name() == "message" {
                self.message = format!("{value:?}");
            }
        }
    }

    impl<S, F> tracing_subscriber::Layer<S> for OnStop<F>
    where
        S: tracing::Subscriber,
        F: Fn() + Send + Sync + 'static,
    {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if fields.message == "mock-ld stopped" && fields.description == self.description {
                (self.then)();
            }
        }
    }

    /// The process's log subscriber, for this file's one test that needs it.
    pub fn install(description: &'static str, then: impl Fn() + Send + Sync + 'static) {
        tracing_subscriber::registry()
            .with(OnStop { description, then })
            .try_init()
            .expect("no other test of this file sets a log subscriber");
    }
}
