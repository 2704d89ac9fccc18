//! A progress bar on stderr while the load runs (only on a terminal; see `main`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use super::load::Progress;

pub struct Bar {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

/// Starts redrawing `total` requests' progress ten times a second.
pub fn spawn(progress: Arc<Progress>, total: u64) -> Bar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} requests {per_sec} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let shown = bar.clone();
    let task = tokio::spawn(async move {
        loop {
            shown.set_position(progress.finished.load(Ordering::Relaxed));
            let failed = progress.failed.load(Ordering::Relaxed);
            if failed > 0 {
                shown.set_message(format!("{failed} failed"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Bar { bar, task }
}

pub async fn finish(bar: Option<Bar>) {
    if let Some(Bar { bar, task }) = bar {
        task.abort();
        bar.finish_and_clear();
    }
}
