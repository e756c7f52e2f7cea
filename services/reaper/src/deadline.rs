//! Deadline enforcement: a run past its wall-clock deadline ends `timed_out`. Unleased runs
//! (queued, waiting, between steps) are ended here by compare-and-set; a run with a step in
//! flight gets a stop request that its worker's heartbeat turns into `timed_out`.

use baton_core::status::is_terminal;
use baton_core::stop::StopRequest;
use baton_proto::v1::RunStatus;
use baton_service::control::Stopped;
use baton_store::Index;
use baton_telemetry::now_ms;

use crate::Reaper;

/// Enforces the deadline of one entry, due `at` (removed only as read).
pub async fn enforce(reaper: &Reaper, run_id: &str, at: i64) -> anyhow::Result<()> {
    let store = &reaper.store;
    let Some(snapshot) = store.read_for_update(run_id).await? else {
        store.index_clear(Index::Deadlines, run_id, at).await?;
        return Ok(());
    };
    let state = &snapshot.state;
    if is_terminal(state.status()) {
        store.index_clear(Index::Deadlines, run_id, at).await?;
        return Ok(());
    }
    if state.deadline_at_ms > now_ms() {
        // The deadline moved (e.g. a requeue): re-index it.
        store.index_set(Index::Deadlines, run_id, state.deadline_at_ms).await?;
        return Ok(());
    }
    let request = StopRequest {
        status: RunStatus::TimedOut,
        code: "deadline".into(),
        by: "reaper".into(),
        message: format!("wall-clock deadline passed at step {}", state.next_step),
    };
    match reaper.control.stop(&snapshot, &request).await? {
        Stopped::Ended(_) => {
            metrics::counter!(crate::metric_definitions::TIMED_OUT).increment(1);
            tracing::info!(run_id, "run timed out");
        }
        // The worker ends the run; if it dies first, the next look finds it unleased.
        Stopped::Requested => {
            store.index_set(Index::Deadlines, run_id, now_ms() + reaper.config.worker.lease_ttl_ms as i64).await?
        }
        // Claimed or changed meanwhile: look again shortly.
        Stopped::Changed => store.index_set(Index::Deadlines, run_id, now_ms() + 50).await?,
    }
    Ok(())
}
