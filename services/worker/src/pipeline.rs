//! One claimed step, start to finish (DESIGN §5 steps 3–5): plan and execute under a
//! heartbeat — a planner's accepted proposal is committed first, so the tool only ever runs a
//! durable proposal — commit the result under the fence, then [`crate::hand_on`]. A pending
//! stop (cancel, deadline) is committed instead of the step; a drain hands the step back to
//! another worker at once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use baton_core::machine::{Next, StepContext, Transition};
use baton_core::stop::StopRequest;
use baton_proto::v1::{RunEvent, RunState, StepRecord};
use baton_runtime::{execute, plan, Planned, StepEnv};
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
    /// The run's recorded steps, for its planner (empty for a script).
    pub history: Vec<StepRecord>,
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
    let Claimed { lease, state, stop, history, due } = claimed;
    if let Some(stop) = stop {
        let t = stop.apply(state, now_ms());
        return commit_and_hand_on(worker, &lease, t, &[], due, origin).await;
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
    // The run as last committed (a stop or a hand-back applies to it), and the events of a
    // proposal committed during this step (they reach Kafka with the step's own).
    let mut committed = state;
    let mut proposed = Vec::new();
    let executing = Instant::now();
    let result = advance(worker, &lease, &mut committed, &history, &mut proposed, ctx, &step_cancel).await;
    phase("execute", executing);
    beat_done.cancel();
    let _ = beat.await;
    let due = due.load(Ordering::SeqCst);
    match result {
        Ok(t) => commit_and_hand_on(worker, &lease, t, &proposed, due, origin).await,
        Err(Halt::Fenced) => "fenced",
        Err(Halt::CommitFailed) => "commit_failed",
        Err(Halt::Abandoned) => {
            match cause.get().cloned().unwrap_or(if abandon.is_cancelled() { Cause::Drain } else { Cause::LeaseLost }) {
                Cause::Stop(stop) => {
                    commit_and_hand_on(worker, &lease, stop.apply(committed, now_ms()), &proposed, due, origin).await
                }
                Cause::Drain => hand_back(worker, &lease, &committed).await,
                Cause::LeaseLost => "abandoned",
            }
        }
    }
}

/// Why a step ended without a transition to commit.
enum Halt {
    /// Stopped by its token: lease lost, stop requested, or drain.
    Abandoned,
    /// The proposal commit found a newer claim.
    Fenced,
    /// The proposal could not be made durable (Redis unavailable): nothing may run.
    CommitFailed,
}

/// Step 3: ask the planner and judge its proposal — unless a committed proposal awaits (a retry,
/// or a recovery after a crash), which runs as committed without asking again — then make an
/// accepted proposal durable (first commit) and run its tool. Returns what to commit.
async fn advance(
    worker: &Worker,
    lease: &Lease,
    committed: &mut RunState,
    history: &[StepRecord],
    proposed: &mut Vec<RunEvent>,
    ctx: StepContext,
    cancel: &CancellationToken,
) -> Result<Transition, Halt> {
    let (catalog, tools) = worker.tools();
    let env = StepEnv { catalog: &catalog, rules: &worker.rules, tools: &tools, limits: worker.limits };
    let (state, call) = match committed.pending.as_ref().and_then(|p| p.call.clone()) {
        Some(call) => (committed.clone(), call),
        None => {
            let planner = worker.planners.for_run(committed);
            let planning = Instant::now();
            let planned = plan(committed.clone(), history, planner.as_ref(), &env, &ctx, cancel, now_ms).await;
            phase("plan", planning);
            match planned.map_err(|_| Halt::Abandoned)? {
                Planned::Done(t) => return Ok(t),
                Planned::Execute { proposal, call } => {
                    if proposal.events.is_empty() {
                        (proposal.state, call)
                    } else {
                        // The proposal is durable before anything executes.
                        let ttl = worker.config.worker.lease_ttl_ms;
                        match worker.store.checkpoint(lease, &proposal.state, &proposal.events, ttl).await {
                            Ok(CommitOutcome::Committed) => {}
                            Ok(CommitOutcome::Fenced) => return Err(Halt::Fenced),
                            Err(e) => {
                                tracing::warn!(error = %e, "proposal not committed; the step will be planned again");
                                return Err(Halt::CommitFailed);
                            }
                        }
                        let mut state = proposal.state;
                        baton_store::layout::mark_committed(&mut state);
                        *committed = state.clone();
                        proposed.clone_from(&proposal.events);
                        (state, call)
                    }
                }
            }
        }
    };
    let ctx = StepContext { now_ms: now_ms(), ..ctx };
    execute(state, call, &env, ctx, cancel, now_ms).await.map_err(|_| Halt::Abandoned)
}

async fn commit_and_hand_on(
    worker: &Worker,
    lease: &Lease,
    t: Transition,
    proposed: &[RunEvent],
    due: i64,
    origin: &Origin,
) -> &'static str {
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
            let outcome = hand_on(worker, &t, proposed, due, origin).await;
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
