//! What switching faults costs the streams it does not concern: 400 SSE streams open on
//! environment `production`, then 400 fault changes (200 `streamStalled` on and off) in
//! environment `test`, through `/admin/faults`. Prints the process's CPU seconds (user +
//! system, mock-ld and the clients in one process) and the wall time of the changes, and
//! how many bytes the streams received meanwhile (none: the faults are not theirs).
//!
//! ```text
//! cargo run --release -p mock-ld --example fault_wakeups [STREAMS] [CHANGES]
//! ```
//!
//! A probe, not a test: bounded (at most 10,000 streams and changes), no assertions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mock_ld::{Config, MockLd};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
        .min(10_000)
}

/// User plus system CPU time of this process.
fn cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let (user, system) = (usage.user_time(), usage.system_time());
    let micros =
        (user.tv_sec() + system.tv_sec()) * 1_000_000 + (user.tv_usec() + system.tv_usec());
    Duration::from_micros(micros as u64)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (streams, changes) = (arg(1, 400), arg(2, 400));
    let mock = MockLd::start(Config::default())
        .await
        .expect("mock-ld starts");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    for _ in 0..streams {
        let request = http
            .get(format!("{}/all", mock.base_url()))
            .header("Authorization", "sdk-default-production");
        let (received, opened) = (received.clone(), opened.clone());
        tokio::spawn(async move {
            let mut body = request.send().await.expect("stream").bytes_stream();
            body.next().await; // the put
            opened.fetch_add(1, Ordering::Relaxed);
            while let Some(Ok(chunk)) = body.next().await {
                received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened.load(Ordering::Relaxed) < streams as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let faults = format!("{}/admin/faults", mock.base_url());
    let spec = serde_json::json!({"kind": "streamStalled", "environment": "test"});
    let (cpu_before, started, bytes_before) =
        (cpu(), Instant::now(), received.load(Ordering::Relaxed));
    for _ in 0..changes / 2 {
        let on: serde_json::Value = http
            .post(&faults)
            .json(&spec)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        http.delete(format!("{faults}/{}", on["id"]))
            .send()
            .await
            .unwrap();
    }
    let (wall, used) = (started.elapsed(), cpu() - cpu_before);
    println!(
        "fault_wakeups: {} streams open on production, {} fault changes on test: {:.3} CPU s, {:.0} ms wall, {} bytes to the streams meanwhile",
        opened.load(Ordering::Relaxed),
        changes / 2 * 2,
        used.as_secs_f64(),
        wall.as_secs_f64() * 1e3,
        received.load(Ordering::Relaxed) - bytes_before,
    );
}
