//! One claimed step, start to finish (DESIGN §5 steps 3–5): execute under a heartbeat,
//! commit under the fence, hand the run on to Kafka, then clear the in-flight entry.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::machine::{Next, StepContext, Transition};
use baton_proto::v1::{RunState, Task, TaskKind};
use baton_runtime::execute_step;
use baton_store::{CommitOutcome, Lease};
use baton_telemetry::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::heartbeat::heartbeat;
use crate::Worker;

/// Executes, commits and hands on the claimed step of `state`. Never panics on I/O errors:
/// whatever is not finished here is recovered by the reaper from the checkpoint.
pub async fn run_step(
    worker: &Worker,
    lease: Lease,
    state: RunState,
    due: i64,
    traceparent: Option<String>,
    abandon: CancellationToken,
) {
    let span = tracing::info_span!("step", run_id = %lease.run_id, step = state.next_step, attempt = state.attempt, fence = lease.fence);
    if let Some(tp) = &traceparent {
        baton_telemetry::trace::set_parent(&span, tp);
    }
    async move {
        let started = Instant::now();
        let outcome = step(worker, &lease, state, due, &abandon).await;
        metrics::histogram!("baton_worker_step_duration_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("baton_worker_steps_total", "outcome" => outcome).increment(1);
    }
    .instrument(span)
    .await
}

async fn step(worker: &Worker, lease: &Lease, state: RunState, due: i64, abandon: &CancellationToken) -> &'static str {
    let cfg = &worker.config.worker;
    let due = Arc::new(AtomicI64::new(due));
    let step_cancel = abandon.child_token();
    let beat_done = CancellationToken::new();
    let beat = tokio::spawn(heartbeat(
        worker.store.clone(),
        lease.clone(),
        cfg.lease_ttl_ms,
        Duration::from_millis(cfg.heartbeat_ms),
        due.clone(),
        step_cancel.clone(),
        beat_done.clone(),
    ));
    let started_at_ms = now_ms();
    let ctx = StepContext { worker: worker.id.clone(), fence: lease.fence, started_at_ms, now_ms: started_at_ms };
    let result = execute_step(state, &worker.planner, &worker.tools, worker.limits, ctx, &step_cancel, now_ms).await;
    beat_done.cancel();
    let _ = beat.await;
    let Ok(transition) = result else {
        tracing::info!("step abandoned before commit");
        return "abandoned";
    };
    let retention_ms = worker.config.runs.retention_secs.saturating_mul(1000);
    match worker.store.commit(lease, &transition.state, &transition.events, retention_ms).await {
        Ok(CommitOutcome::Committed) => {}
        Ok(CommitOutcome::Fenced) => {
            tracing::warn!("commit rejected: a newer claim holds the run");
            return "fenced";
        }
        Err(e) => {
            tracing::warn!(error = %e, "commit failed; the reaper will redo the step");
            return "commit_failed";
        }
    }
    hand_on(worker, &transition, due.load(Ordering::SeqCst)).await
}

/// Produces the events and the next task, then clears the in-flight entry if it is still ours.
async fn hand_on(worker: &Worker, t: &Transition, due: i64) -> &'static str {
    let run_id = &t.state.run_id;
    if let Err(e) = worker.producer.send_events(&t.events).await {
        tracing::warn!(error = %e, "events not delivered to Kafka (they are in the Redis history)");
    }
    let task = match t.next {
        Next::Nothing => {
            if let Err(e) = worker.store.inflight_drop(run_id).await {
                tracing::warn!(error = %e, "cannot clear in-flight entry of a finished run");
            }
            return "finished";
        }
        Next::Advance { step, attempt } | Next::Retry { step, attempt, .. } => Task {
            run_id: run_id.clone(),
            step,
            attempt,
            kind: TaskKind::Advance as i32,
            lane: t.state.lane.clone(),
            not_before_ms: match t.next {
                Next::Retry { delay_ms, .. } => now_ms() + delay_ms as i64,
                _ => 0,
            },
            tenant: t.state.tenant.clone(),
        },
    };
    if let Err(e) = worker.producer.send_task(&task).await {
        tracing::warn!(error = %e, "next task not delivered; the reaper will re-dispatch it");
        return "handoff_failed";
    }
    if let Err(e) = worker.store.inflight_clear(run_id, due).await {
        tracing::warn!(error = %e, "cannot clear in-flight entry");
    }
    if matches!(t.next, Next::Retry { .. }) { "retried" } else { "advanced" }
}
