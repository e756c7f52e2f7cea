//! One claimed run, claim to hand-on (DESIGN §5 steps 3–5), for one *slice*: the run keeps
//! this worker while it has work. Each step is planned and executed under one heartbeat — a
//! planner's accepted proposal is committed first, so a tool only ever runs a durable proposal —
//! and its result is committed under the fence. A step whose run can go on now is committed
//! with the lease kept (commit-and-continue, one Lua call) and the next step starts at once; the
//! run goes back through its lane topic only to wait, retry, dead-letter, finish, or when the
//! slice ends (`worker.slice_max_steps`, `worker.slice_max_ms`, or a drain). Events go to Kafka
//! off the critical path and are awaited once, at the end of the slice ([`crate::hand_on`]).
//! A pending stop (cancel, deadline) ends the run at the first chance: the claim reports it,
//! the heartbeat cancels the step in flight, and every commit that would let the run go on
//! (a proposal, a started marker, commit-and-continue, a wait, a retry, the slice's end) is
//! refused while one is pending and committed as the stop instead. A drain grace that runs
//! out hands the run back to another worker at once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use baton_bus::Pending;
use baton_core::machine::{Next, StepContext, Transition};
use baton_core::stop::StopRequest;
use baton_proto::v1::{DeadLetter, RunEvent, RunState, StepRecord};
use baton_runtime::{execute, plan, Abandoned, Planned, StepEnv};
use baton_store::layout::mark_committed;
use baton_store::{CommitOutcome, Index, Lease};
use baton_telemetry::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::hand_on::hand_on;
use crate::heartbeat::{heartbeat, Beat, Cause};
use crate::metric_definitions as m;
use crate::Worker;

/// A run this worker claimed.
pub struct Claimed {
    /// The lease and fence.
    pub lease: Lease,
    /// The checkpoint to execute from.
    pub state: RunState,
    /// A stop requested before the claim.
    pub stop: Option<StopRequest>,
    /// The run's recorded steps, for its planner (empty for a script).
    pub history: Vec<StepRecord>,
    /// Events committed before the claim and not yet on Kafka: published first in the slice.
    pub unpublished: Vec<RunEvent>,
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

/// Executes a claimed run's steps for one slice, committing each, then hands it on. Whatever
/// is not finished here (a crash, a Redis or Kafka error) is recovered by the reaper from the
/// checkpoint.
pub async fn run_slice(worker: &Worker, claimed: Claimed, origin: Origin, abandon: CancellationToken) {
    // Every log line of the slice carries the run, step, attempt, tenant and trace id.
    // OTel messaging attributes: this span processes one record of a lane topic.
    let span = tracing::info_span!("slice", run_id = %claimed.lease.run_id, step = claimed.state.next_step,
        attempt = claimed.state.attempt, fence = claimed.lease.fence, tenant = %claimed.state.tenant,
        trace_id = tracing::field::Empty, otel.kind = "consumer", messaging.system = "kafka",
        messaging.operation.type = "process", messaging.destination.name = %origin.topic,
        messaging.destination.partition.id = origin.partition, messaging.kafka.offset = origin.offset);
    if let Some(tp) = &origin.traceparent {
        baton_telemetry::trace::set_parent(&span, tp);
    }
    span.record("trace_id", baton_telemetry::trace::trace_id(&span));
    let run_id = claimed.lease.run_id.clone();
    async move {
        let outcome = slice(worker, claimed, &origin, &abandon).await;
        metrics::counter!(m::STEPS, "outcome" => outcome).increment(1);
        if let Err(e) = worker.store.worker_holds(&worker.id, &run_id, false).await {
            tracing::debug!(error = %e, "cannot drop the run from this worker's set (the reaper ignores it)");
        }
    }
    .instrument(span)
    .await
}

/// How a slice ends.
enum End {
    /// Commit this transition, dropping the lease, and hand the run on.
    Finish(Transition),
    /// The drain grace ran out mid-step: give the run as last committed to another worker.
    HandBack(RunState),
    /// Nothing to write (the lease is gone, or Redis failed): this label says why.
    Quit(&'static str),
}

async fn slice(worker: &Worker, claimed: Claimed, origin: &Origin, abandon: &CancellationToken) -> &'static str {
    let Claimed { lease, mut state, stop, mut history, unpublished, due } = claimed;
    // The slice's events for Kafka, batched and awaited once when it ends; events committed
    // before the claim (the gateway's RUN_QUEUED, a crashed owner's) go first.
    let mut events = Pending::default();
    if let Err(e) = worker.producer.enqueue_events(&unpublished, &mut events).await {
        tracing::warn!(error = %e, "events not handed to Kafka (the reaper re-publishes them from Redis)");
    }
    if let Some(stop) = stop {
        let t = stop.apply(state, now_ms());
        return finish(worker, &lease, t, events, due, origin).await;
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
    let reads_history = !baton_core::plan::is_script(&state);
    let history_window = worker.config.history_window() as usize;
    let trace_id = baton_telemetry::trace::trace_id(&tracing::Span::current());
    let slice_started = Instant::now();
    let mut steps = 0u32;
    let end = loop {
        let started_at_ms = now_ms();
        let ctx = StepContext {
            worker: worker.id.clone(),
            fence: lease.fence,
            started_at_ms,
            now_ms: started_at_ms,
            retry_tiers_ms: worker.config.scheduler.retry_tiers_ms.clone(),
        };
        let stepping = Instant::now();
        // One span per step, carrying everything a log line of it needs.
        let step_span = tracing::info_span!("step", run_id = %lease.run_id, step = state.next_step,
            attempt = state.attempt, tenant = %state.tenant, trace_id = %trace_id);
        let before = baton_core::machine::step_start(&state);
        let stepped =
            advance(worker, &lease, state, &history, &mut events, ctx, &step_cancel).instrument(step_span).await;
        let t = match stepped {
            Ok(t) => t,
            Err((Halt::Abandoned, committed)) => {
                let fallback = if abandon.is_cancelled() { Cause::Drain } else { Cause::LeaseLost };
                break match cause.get().cloned().unwrap_or(fallback) {
                    Cause::Stop(stop) => End::Finish(stop.apply(committed, now_ms())),
                    Cause::Drain => End::HandBack(committed),
                    Cause::LeaseLost => End::Quit("abandoned"),
                };
            }
            Err((Halt::Stopped(t), _)) => break End::Finish(*t),
            Err((Halt::Fenced, _)) => break End::Quit("fenced"),
            Err((Halt::CommitFailed, _)) => break End::Quit("commit_failed"),
        };
        steps += 1;
        let (tool, outcome) = baton_core::machine::step_labels(&before, &t);
        metrics::histogram!(m::STEP_DURATION, "tool" => tool_label(worker, tool), "outcome" => outcome)
            .record(stepping.elapsed().as_secs_f64());
        let slice_over = steps >= cfg.slice_max_steps
            || slice_started.elapsed() >= Duration::from_millis(cfg.slice_max_ms)
            || worker.draining.is_cancelled()
            || worker.switches.lane_paused(&cfg.lane)
            || step_cancel.is_cancelled();
        if !matches!(t.next, Next::Advance { .. }) || slice_over {
            break End::Finish(t);
        }
        // Commit-and-continue: the step's checkpoint under the fence, the lease renewed, one Lua call.
        let committing = Instant::now();
        let committed = worker.store.checkpoint(&lease, &t.state, &t.events, cfg.lease_ttl_ms).await;
        phase("commit", committing);
        match committed {
            Ok(CommitOutcome::Committed) => {}
            Ok(CommitOutcome::Stopped(stop)) => break End::Finish(stop.apply_after(t, now_ms())),
            Ok(CommitOutcome::Fenced) => break End::Quit("fenced"),
            Err(e) => {
                tracing::warn!(error = %e, "commit failed; the reaper will redo the step");
                break End::Quit("commit_failed");
            }
        }
        if let Err(e) = worker.producer.enqueue_events(&t.events, &mut events).await {
            tracing::warn!(error = %e, "events not handed to Kafka (the reaper re-publishes them from Redis)");
        }
        metrics::counter!(m::STEPS, "outcome" => "continued").increment(1);
        state = t.state;
        if reads_history {
            // The same window a claim reads: a long slice does not grow what it holds.
            history.extend(std::mem::take(&mut state.steps));
            if history.len() > history_window {
                history.drain(..history.len() - history_window);
            }
        }
        mark_committed(&mut state);
    };
    beat_done.cancel();
    let _ = beat.await;
    metrics::histogram!(m::SLICE_STEPS).record(f64::from(steps));
    let due = due.load(Ordering::SeqCst);
    match end {
        End::Finish(t) => finish(worker, &lease, t, events, due, origin).await,
        End::HandBack(committed) => hand_back(worker, &lease, &committed, events).await,
        End::Quit(why) => why,
    }
}

/// A tool name as a metric label: a tool this worker knows, `none` for a step that called none,
/// `other` for a name a planner made up (labels stay a bounded set).
fn tool_label(worker: &Worker, tool: String) -> String {
    if tool.is_empty() {
        "none".to_string()
    } else if worker.catalog.catalog().get(&tool).is_some() {
        tool
    } else {
        "other".to_string()
    }
}

/// Why a step ended without a transition to commit; the run as last committed comes along.
enum Halt {
    /// Stopped by its token: lease lost, stop requested, or drain.
    Abandoned,
    /// A stop is pending: the run's end to commit instead of the step.
    Stopped(Box<Transition>),
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
    state: RunState,
    history: &[StepRecord],
    events: &mut Pending,
    ctx: StepContext,
    cancel: &CancellationToken,
) -> Result<Transition, (Halt, RunState)> {
    let (catalog, tools) = worker.tools();
    let switches = worker.switches.now();
    let env = StepEnv {
        catalog: &catalog,
        rules: &worker.rules,
        tools: &tools,
        limits: worker.limits,
        gates: &switches.gates,
        approvals: &worker.approvals,
        breakers: &worker.breakers,
    };
    let abandoned = |Abandoned(state)| (Halt::Abandoned, *state);
    let (state, call) = match state.pending.as_ref().and_then(|p| p.call.clone()) {
        Some(call) => (state, call),
        None => {
            let planner = worker.planners.for_run(&state);
            let planning = Instant::now();
            let planned = plan(state, history, planner.as_ref(), &env, &ctx, cancel, now_ms).await;
            phase("plan", planning);
            match planned.map_err(abandoned)? {
                Planned::Done(t) => return Ok(t),
                Planned::Execute { proposal, call } if proposal.events.is_empty() => (proposal.state, call),
                Planned::Execute { proposal, call } => {
                    // The proposal is durable before anything executes.
                    let ttl = worker.config.worker.lease_ttl_ms;
                    let mut state = proposal.state;
                    match worker.store.checkpoint(lease, &state, &proposal.events, ttl).await {
                        Ok(CommitOutcome::Committed) => {}
                        Ok(CommitOutcome::Stopped(stop)) => {
                            // The proposal is recorded with the run's end; its tool never runs.
                            let t = Transition { state: state.clone(), events: proposal.events, next: Next::Execute };
                            return Err((Halt::Stopped(Box::new(stop.apply_after(t, now_ms()))), state));
                        }
                        Ok(CommitOutcome::Fenced) => return Err((Halt::Fenced, state)),
                        Err(e) => {
                            tracing::warn!(error = %e, "proposal not committed; the step will be planned again");
                            return Err((Halt::CommitFailed, state));
                        }
                    }
                    mark_committed(&mut state);
                    if let Err(e) = worker.producer.enqueue_events(&proposal.events, events).await {
                        tracing::warn!(error = %e, "events not handed to Kafka (the reaper re-publishes them from Redis)");
                    }
                    (state, call)
                }
            }
        }
    };
    let ctx = StepContext { now_ms: now_ms(), ..ctx };
    let mut state = state;
    if catalog.get(&call.tool).is_some_and(|t| t.def.uncertain_if_interrupted()) {
        // A call that must not happen twice: a recovered run whose call may have gone out waits
        // for an operator; otherwise a started marker is committed before the call goes out.
        if baton_core::reconcile::started(&state) {
            return Ok(baton_core::reconcile::cut_off(state, &call, &ctx));
        }
        let unmarked = state.clone();
        baton_core::reconcile::mark_started(&mut state, &call, &worker.id, ctx.now_ms);
        let ttl = worker.config.worker.lease_ttl_ms;
        match worker.store.checkpoint(lease, &state, &[], ttl).await {
            Ok(CommitOutcome::Committed) => mark_committed(&mut state),
            Ok(CommitOutcome::Stopped(stop)) => {
                // The call never went out: the run ends without a started marker.
                return Err((Halt::Stopped(Box::new(stop.apply(unmarked, now_ms()))), state));
            }
            Ok(CommitOutcome::Fenced) => return Err((Halt::Fenced, state)),
            Err(e) => {
                tracing::warn!(error = %e, "started marker not committed; the call does not go out");
                return Err((Halt::CommitFailed, state));
            }
        }
    }
    let executing = Instant::now();
    let result = execute(state, call, &env, ctx, cancel, now_ms).await.map_err(abandoned);
    phase("execute", executing);
    result
}

/// Step 4 and 5 at the end of a slice: commit `t` dropping the lease, then hand the run on.
/// If a stop is pending and `t` would let the run go on, the stop is committed after `t`'s
/// step instead.
async fn finish(
    worker: &Worker,
    lease: &Lease,
    t: Transition,
    events: Pending,
    due: i64,
    origin: &Origin,
) -> &'static str {
    let mut t = t;
    loop {
        let letter = crate::hand_on::dead_letter(&t, origin);
        if let Err(why) = index_ahead(worker, &t, letter.as_ref()).await {
            return why;
        }
        let retention_ms = worker.config.runs.retention_ms();
        let committing = Instant::now();
        let committed = worker.store.commit(lease, &t.state, &t.events, retention_ms, letter.as_ref()).await;
        phase("commit", committing);
        match committed {
            Ok(CommitOutcome::Committed) => {
                if baton_core::status::is_terminal(t.state.status()) {
                    baton_service::metric_definitions::count_finished(&t.state);
                }
                let handing_on = Instant::now();
                let outcome = hand_on(worker, &t, events, due, letter).await;
                phase("hand_on", handing_on);
                return outcome;
            }
            // Refused only for a transition that lets the run go on; the stop's own end is not.
            Ok(CommitOutcome::Stopped(stop)) => t = stop.apply_after(t, now_ms()),
            Ok(CommitOutcome::Fenced) => {
                tracing::warn!("commit rejected: a newer claim holds the run");
                return "fenced";
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit failed; the reaper will redo the step");
                return "commit_failed";
            }
        }
    }
}

/// What must be findable before `t` is committed, so a crash right after the commit leaves
/// nothing unindexed: a waiting run's timer, an approval request's listing, a dead letter's.
async fn index_ahead(worker: &Worker, t: &Transition, letter: Option<&DeadLetter>) -> Result<(), &'static str> {
    let run_id = &t.state.run_id;
    if let Next::Wait { wake_at_ms } = t.next {
        if let Err(e) = worker.store.index_set(Index::Timers, run_id, wake_at_ms).await {
            tracing::warn!(error = %e, "cannot index timer; the step will be redone");
            return Err("commit_failed");
        }
    }
    if let Some(approval) = baton_core::approval::waiting_on(&t.state) {
        // ListApprovals must find every waiting request.
        if let Err(e) = worker.store.approvals_add(&t.state.tenant, run_id, approval.requested_at_ms).await {
            tracing::warn!(error = %e, "cannot list the approval request; the step will be redone");
            return Err("commit_failed");
        }
    }
    if let Some(letter) = letter {
        if let Err(e) = worker.store.dead_letter_index(run_id, letter.dead_at_ms).await {
            tracing::warn!(error = %e, "cannot list the dead letter; the step will be redone");
            return Err("commit_failed");
        }
    }
    Ok(())
}

/// Drain: release the lease and re-dispatch the same step so another worker takes it now.
async fn hand_back(worker: &Worker, lease: &Lease, state: &RunState, events: Pending) -> &'static str {
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
    // The run's events go first, so the next owner's follow them.
    crate::hand_on::publish(worker, state, events).await;
    if let Err(e) = worker.producer.send_task(&task).await {
        tracing::warn!(error = %e, "hand-back task not delivered; the reaper will re-dispatch");
    }
    metrics::counter!(m::LEASES_RELEASED).increment(1);
    tracing::info!("run handed back on drain");
    "handed_back"
}

/// Records how long one phase of the step pipeline took (`baton_worker_phase_seconds`).
pub fn phase(name: &'static str, since: Instant) {
    metrics::histogram!(m::PHASE, "phase" => name).record(since.elapsed().as_secs_f64());
}
