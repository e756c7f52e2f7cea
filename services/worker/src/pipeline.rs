//! One claimed step, start to finish (DESIGN §5 steps 3–5): execute under a heartbeat, commit
//! under the fence, then [`crate::hand_on`]. A pending stop (cancel, deadline) is committed
//! instead of the step; a drain hands the step back to another worker at once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use baton_core::machine::{Next, StepContext, Transition};
use baton_core::stop::StopRequest;
use baton_proto::v1::RunState;
use baton_runtime::execute_step;
use baton_store::{CommitOutcome, Index, Lease};
use baton_telemetry::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::hand_on::hand_on;
use crate::heartbeat::{heartbeat, Beat, Cause};
use crate::Worker;

/// A step this worker claimed.
pub struct Claimed {
    /// The lease and fence.
    pub lease: Lease,
    /// The checkpoint to execute from.
    pub state: RunState,
    /// A stop requested before the claim.
    pub stop: Option<StopRequest>,
    /// Score written to the in-flight index at claim time.
    pub due: i64,
}

/// Where the task record came from: DLQ headers name it; the trace continues from it.
pub struct Origin {
    /// Topic of the task record.
    pub topic: String,
    /// Partition of the task record.
    pub partition: i32,
    /// Offset of the task record.
    pub offset: i64,
    /// W3C trace context of the record.
    pub traceparent: Option<String>,
}

/// Executes, commits and hands on a claimed step. Whatever is not finished here (a crash, a
/// Redis or Kafka error) is recovered by the reaper from the checkpoint.
pub async fn run_step(worker: &Worker, claimed: Claimed, origin: Origin, abandon: CancellationToken) {
    let span = tracing::info_span!("step", run_id = %claimed.lease.run_id, step = claimed.state.next_step,
        attempt = claimed.state.attempt, fence = claimed.lease.fence);
    if let Some(tp) = &origin.traceparent {
        baton_telemetry::trace::set_parent(&span, tp);
    }
    async move {
        let started = Instant::now();
        let outcome = step(worker, claimed, &origin, &abandon).await;
        metrics::histogram!(crate::metric_definitions::STEP_DURATION).record(started.elapsed().as_secs_f64());
        metrics::counter!(crate::metric_definitions::STEPS, "outcome" => outcome).increment(1);
    }
    .instrument(span)
    .await
}

async fn step(worker: &Worker, claimed: Claimed, origin: &Origin, abandon: &CancellationToken) -> &'static str {
    let Claimed { lease, state, stop, due } = claimed;
    if let Some(stop) = stop {
        let t = stop.apply(state, now_ms());
        return commit_and_hand_on(worker, &lease, t, due, origin).await;
    }
    let cfg = &worker.config.worker;
    let due = Arc::new(AtomicI64::new(due));
    let step_cancel = abandon.child_token();
    let cause = Arc::new(OnceLock::new());
    let beat_done = CancellationToken::new();
    let beat = tokio::spawn(heartbeat(
        worker.store.clone(),
        lease.clone(),
        Beat {
            ttl_ms: cfg.lease_ttl_ms,
            every: Duration::from_millis(cfg.heartbeat_ms),
            due: due.clone(),
            step: step_cancel.clone(),
            cause: cause.clone(),
            done: beat_done.clone(),
        },
    ));
    let started_at_ms = now_ms();
    let ctx = StepContext {
        worker: worker.id.clone(),
        fence: lease.fence,
        started_at_ms,
        now_ms: started_at_ms,
        retry_tiers_ms: worker.config.scheduler.retry_tiers_ms.clone(),
    };
    let executing = Instant::now();
    let result =
        execute_step(state.clone(), &worker.planner, &worker.tools, worker.limits, ctx, &step_cancel, now_ms).await;
    phase("execute", executing);
    beat_done.cancel();
    let _ = beat.await;
    let due = due.load(Ordering::SeqCst);
    match result {
        Ok(t) => commit_and_hand_on(worker, &lease, t, due, origin).await,
        Err(_) => {
            match cause.get().cloned().unwrap_or(if abandon.is_cancelled() { Cause::Drain } else { Cause::LeaseLost }) {
                Cause::Stop(stop) => commit_and_hand_on(worker, &lease, stop.apply(state, now_ms()), due, origin).await,
                Cause::Drain => hand_back(worker, &lease, &state).await,
                Cause::LeaseLost => "abandoned",
            }
        }
    }
}

async fn commit_and_hand_on(worker: &Worker, lease: &Lease, t: Transition, due: i64, origin: &Origin) -> &'static str {
    if let Next::Wait { wake_at_ms } = t.next {
        // Index the timer first: a crash after the commit must not leave a waiting run unindexed.
        if let Err(e) = worker.store.index_set(Index::Timers, &t.state.run_id, wake_at_ms).await {
            tracing::warn!(error = %e, "cannot index timer; the step will be redone");
            return "commit_failed";
        }
    }
    let retention_ms = worker.config.runs.retention_ms();
    let committing = Instant::now();
    let committed = worker.store.commit(lease, &t.state, &t.events, retention_ms).await;
    phase("commit", committing);
    match committed {
        Ok(CommitOutcome::Committed) => {
            let handing_on = Instant::now();
            let outcome = hand_on(worker, &t, due, origin).await;
            phase("hand_on", handing_on);
            outcome
        }
        Ok(CommitOutcome::Fenced) => {
            tracing::warn!("commit rejected: a newer claim holds the run");
            "fenced"
        }
        Err(e) => {
            tracing::warn!(error = %e, "commit failed; the reaper will redo the step");
            "commit_failed"
        }
    }
}

/// Drain: release the lease and re-dispatch the same step so another worker takes it now.
async fn hand_back(worker: &Worker, lease: &Lease, state: &RunState) -> &'static str {
    let task = baton_core::current_task(state);
    let due = now_ms() + worker.config.runs.dispatch_grace_ms as i64;
    if let Err(e) = worker.store.index_set(Index::Inflight, &state.run_id, due).await {
        tracing::warn!(error = %e, "cannot index hand-back; the lease will expire instead");
        return "abandoned";
    }
    match worker.store.release(lease).await {
        Ok(true) => {}
        Ok(false) => return "abandoned",
        Err(e) => {
            tracing::warn!(error = %e, "cannot release lease; it will expire instead");
            return "abandoned";
        }
    }
    if let Err(e) = worker.producer.send_task(&task).await {
        tracing::warn!(error = %e, "hand-back task not delivered; the reaper will re-dispatch");
    }
    metrics::counter!(crate::metric_definitions::LEASES_RELEASED).increment(1);
    tracing::info!("step handed back on drain");
    "handed_back"
}

/// Records how long one phase of the step pipeline took (`baton_worker_phase_seconds`).
pub fn phase(name: &'static str, since: Instant) {
    metrics::histogram!(crate::metric_definitions::PHASE, "phase" => name).record(since.elapsed().as_secs_f64());
}
