//! The run state machine: what a tool call's outcome does to the checkpoint, which events it
//! emits, and what must happen next (another step, a retry after a back-off, or nothing).
//! What a planner's proposal does before any tool runs is in [`crate::proposal`].

use crate::events::push;
use crate::plan::{is_script, script_len};
use crate::status::is_terminal;
use crate::step_idempotency_key;
use crate::v1::{EventKind, RunEvent, RunState, RunStatus, StepOutcome, StepRecord, StopReason, ToolCall, Usage};

/// Who executed a step and when; stamped on records and events.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// Worker identity.
    pub worker: String,
    /// Fence token of the claim this step runs under.
    pub fence: u64,
    /// When the step started (ms since epoch).
    pub started_at_ms: i64,
    /// Now (ms since epoch).
    pub now_ms: i64,
    /// Delays of the retry tier topics, ascending. A retry waits the tier its back-off falls
    /// in (see [`crate::retry`]); empty means exactly the back-off.
    pub retry_tiers_ms: Vec<u64>,
}

/// How a tool call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The tool returned this JSON output.
    Completed {
        /// Tool output as JSON text.
        output_json: String,
    },
    /// The step parks the run until `wake_at_ms` (the `wait` tool).
    Waiting {
        /// When to wake (ms since epoch).
        wake_at_ms: i64,
    },
    /// The call was not made: its tool's circuit breaker is open or an operator disabled it.
    /// The step is tried again at `until_ms`, without spending an attempt.
    Held {
        /// Why, e.g. "circuit breaker of tool X is open".
        error: String,
        /// Earliest time to try again (ms since epoch).
        until_ms: i64,
    },
    /// The tool (or the planner) failed.
    Failed {
        /// What went wrong.
        error: String,
        /// Whether trying again may succeed (timeouts, 5xx) or not (bad arguments).
        retryable: bool,
        /// The least time to wait before trying again (a `Retry-After`), if the failure said.
        retry_after_ms: Option<u64>,
    },
}

impl Outcome {
    /// A failure that trying again may cure.
    pub fn retryable(error: impl Into<String>) -> Self {
        Outcome::Failed { error: error.into(), retryable: true, retry_after_ms: None }
    }

    /// A failure that trying again will not cure.
    pub fn fatal(error: impl Into<String>) -> Self {
        Outcome::Failed { error: error.into(), retryable: false, retry_after_ms: None }
    }
}

/// What the worker must hand on after committing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Produce a task for this step and attempt now.
    Advance {
        /// Step to run.
        step: u32,
        /// Attempt of that step.
        attempt: u32,
    },
    /// Produce a task for this step and attempt to the retry tier topic of `delay_ms`.
    Retry {
        /// Step to retry.
        step: u32,
        /// Attempt number of the retry.
        attempt: u32,
        /// How long the retry waits: its tier's delay, which names its topic.
        delay_ms: u64,
        /// Earliest time the retry may run (ms since epoch).
        not_before_ms: i64,
    },
    /// The run waits for a timer (a sleep, an approval's expiry): index it in the timers, no task.
    Wait {
        /// When to wake (ms since epoch).
        wake_at_ms: i64,
    },
    /// The run waits for a person (an approval without expiry, a reconciliation): no task, no timer.
    Hold,
    /// The step exhausted its retries: write a dead letter, no task.
    DeadLetter {
        /// The failed step.
        step: u32,
        /// Its tool.
        tool: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// The run is terminal: no task.
    Nothing,
    /// A proposal was accepted: its tool runs now, under the same lease.
    Execute,
}

/// The result of applying something to a checkpoint: the new state, its events, the next move.
#[derive(Debug, Clone)]
pub struct Transition {
    /// Checkpoint to commit.
    pub state: RunState,
    /// Events to append, in order.
    pub events: Vec<RunEvent>,
    /// Task to hand on after the commit.
    pub next: Next,
}

/// Applies the outcome of the tool call for step `state.next_step`. A completed call is
/// recorded and the run moves on; a retryable failure keeps the step (and its committed
/// proposal) for another attempt; a failure for good ends a script run `failed`, and is
/// recorded and shown to any other planner so it can try another way.
pub fn apply_outcome(
    mut state: RunState,
    call: &ToolCall,
    outcome: Outcome,
    ctx: &StepContext,
    jitter: f64,
) -> Transition {
    let step = state.next_step;
    let attempt = state.attempt;
    let key = step_idempotency_key(&state.run_id, step);
    state.status = RunStatus::Running as i32;
    state.updated_at_ms = ctx.now_ms;
    if let (Outcome::Held { .. } | Outcome::Failed { .. }, Some(p)) = (&outcome, state.pending.as_mut()) {
        // The call's outcome is known (it failed, or was never made): a retry is a fresh start.
        p.started_at_ms = 0;
        p.started_by.clear();
    }
    let mut events = Vec::new();
    match outcome {
        Outcome::Completed { output_json } => {
            let usage = record_step(&mut state, call, ctx, StepOutcome::Completed, |r| {
                r.output_json = output_json.clone();
            });
            push(&mut state, &mut events, EventKind::StepCompleted, ctx.now_ms, |e| {
                fill_step(e, step, attempt, &call.tool, &key, output_json, ctx);
                e.usage = Some(usage);
            });
            if is_script(&state) && state.next_step >= script_len(&state) {
                let why = reason("completed", "all steps completed");
                return finish_after(state, events, RunStatus::Succeeded, why, ctx.now_ms, Next::Nothing);
            }
            let next = Next::Advance { step: state.next_step, attempt: 0 };
            Transition { state, events, next }
        }
        Outcome::Waiting { wake_at_ms } => {
            let output_json = format!(r#"{{"wake_at_ms":{wake_at_ms}}}"#);
            let completed = Outcome::Completed { output_json };
            let mut t = apply_outcome(state, call, completed, ctx, jitter);
            if t.state.status() != RunStatus::Running || wake_at_ms <= ctx.now_ms {
                return t;
            }
            t.state.status = RunStatus::Waiting as i32;
            t.state.wait_reason = "timer".into();
            t.state.wake_at_ms = wake_at_ms;
            push(&mut t.state, &mut t.events, EventKind::RunWaiting, ctx.now_ms, |e| {
                e.step = step + 1;
                e.not_before_ms = wake_at_ms;
                e.detail = "timer".into();
            });
            t.next = Next::Wait { wake_at_ms };
            t
        }
        Outcome::Held { error, until_ms } => {
            state.last_error = error.clone();
            let wait_ms = (until_ms - ctx.now_ms).max(1) as u64;
            let delay_ms = crate::retry::tier_at_least_ms(wait_ms, &ctx.retry_tiers_ms);
            let not_before_ms = ctx.now_ms + delay_ms as i64;
            push(&mut state, &mut events, EventKind::StepFailed, ctx.now_ms, |e| {
                fill_step(e, step, attempt, &call.tool, &key, error, ctx);
                e.reason_code = "held".into();
                e.not_before_ms = not_before_ms;
            });
            Transition { state, events, next: Next::Retry { step, attempt, delay_ms, not_before_ms } }
        }
        Outcome::Failed { error, retryable, retry_after_ms } => {
            state.last_error = error.clone();
            let policy = state.retry.unwrap_or_default();
            let delay_ms = (retryable && attempt + 1 < policy.max_attempts.max(1)).then(|| {
                let backoff = crate::retry::backoff_ms(&policy, attempt, jitter);
                match retry_after_ms {
                    Some(at_least) => crate::retry::tier_at_least_ms(backoff.max(at_least), &ctx.retry_tiers_ms),
                    None => crate::retry::tier_delay_ms(backoff, &ctx.retry_tiers_ms),
                }
            });
            let not_before_ms = delay_ms.map_or(0, |d| ctx.now_ms + d as i64);
            if !retryable && !is_script(&state) && !call.tool.is_empty() {
                // Another planner hears about it and may try another way.
                let usage = record_step(&mut state, call, ctx, StepOutcome::Failed, |r| r.error = error.clone());
                state.last_error.clear();
                push(&mut state, &mut events, EventKind::StepFailed, ctx.now_ms, |e| {
                    fill_step(e, step, attempt, &call.tool, &key, error.clone(), ctx);
                    e.usage = Some(usage);
                });
                return Transition { next: Next::Advance { step: state.next_step, attempt: 0 }, state, events };
            }
            push(&mut state, &mut events, EventKind::StepFailed, ctx.now_ms, |e| {
                fill_step(e, step, attempt, &call.tool, &key, error.clone(), ctx);
                e.not_before_ms = not_before_ms;
            });
            let what = if call.tool.is_empty() { "planner".to_string() } else { call.tool.clone() };
            if !retryable {
                let code = if call.tool.is_empty() { "planner_error" } else { "tool_error" };
                let why = reason(code, format!("step {step} ({what}): {error}"));
                return finish_after(state, events, RunStatus::Failed, why, ctx.now_ms, Next::Nothing);
            }
            let Some(delay_ms) = delay_ms else {
                let msg = format!("step {step} ({what}) failed {} times, last error: {error}", attempt + 1);
                let next = Next::DeadLetter { step, tool: what, attempts: attempt + 1, error };
                return finish_after(
                    state,
                    events,
                    RunStatus::DeadLettered,
                    reason("retries_exhausted", msg),
                    ctx.now_ms,
                    next,
                );
            };
            state.attempt = attempt + 1;
            Transition { state, events, next: Next::Retry { step, attempt: attempt + 1, delay_ms, not_before_ms } }
        }
    }
}

/// Appends the record of step `state.next_step` — the call, the committed proposal's usage plus
/// one tool call — clears the proposal and moves to the next step. Returns the step's usage.
fn record_step(
    state: &mut RunState,
    call: &ToolCall,
    ctx: &StepContext,
    outcome: StepOutcome,
    fill: impl FnOnce(&mut StepRecord),
) -> Usage {
    let pending = state.pending.take().unwrap_or_default();
    let mut usage = pending.usage.unwrap_or_default();
    usage.tool_calls += 1;
    state.usage.get_or_insert_with(Usage::default).tool_calls += 1;
    let mut record = StepRecord {
        step: state.next_step,
        tool: call.tool.clone(),
        args_json: call.args_json.clone(),
        idempotency_key: step_idempotency_key(&state.run_id, state.next_step),
        attempt: state.attempt,
        started_at_ms: ctx.started_at_ms,
        finished_at_ms: ctx.now_ms,
        worker: ctx.worker.clone(),
        outcome: outcome as i32,
        usage: Some(usage),
        model_text: pending.model_text,
        approval: pending.approval,
        ..Default::default()
    };
    fill(&mut record);
    state.steps.push(record);
    state.next_step += 1;
    state.attempt = 0;
    state.last_error.clear();
    usage
}

/// Ends the run with `status` (which must be terminal) and emits RUN_FINISHED, which carries
/// the run's result and total usage.
pub fn finish(mut state: RunState, status: RunStatus, stop: StopReason, now_ms: i64) -> Transition {
    debug_assert!(is_terminal(status), "finish needs a terminal status, got {status:?}");
    state.status = status as i32;
    state.updated_at_ms = now_ms;
    state.stop_reason = Some(stop.clone());
    let step_at_finish = state.next_step;
    let (result, usage) = (state.result.clone(), state.usage);
    let mut events = Vec::new();
    push(&mut state, &mut events, EventKind::RunFinished, now_ms, |e| {
        e.step = step_at_finish;
        e.stop_reason = Some(stop);
        e.detail = result;
        e.usage = usage;
    });
    Transition { state, events, next: Next::Nothing }
}

/// Ends the run after the step events already in `events`; `next` is what is still to hand
/// on (a dead letter, or nothing).
pub fn finish_after(
    state: RunState,
    mut events: Vec<RunEvent>,
    status: RunStatus,
    stop: StopReason,
    now_ms: i64,
    next: Next,
) -> Transition {
    let t = finish(state, status, stop, now_ms);
    events.extend(t.events);
    Transition { state: t.state, events, next }
}

/// Wakes a waiting run: it continues at its next step.
pub fn wake(mut state: RunState, now_ms: i64) -> Transition {
    state.status = RunStatus::Running as i32;
    state.wake_at_ms = 0;
    state.wait_reason.clear();
    state.updated_at_ms = now_ms;
    let mut events = Vec::new();
    let step = state.next_step;
    push(&mut state, &mut events, EventKind::RunResumed, now_ms, |e| e.step = step);
    let next = Next::Advance { step, attempt: state.attempt };
    Transition { state, events, next }
}

/// Resumes a dead-lettered run at its failed step, with attempts reset.
pub fn requeue(mut state: RunState, by: &str, now_ms: i64) -> Transition {
    state.status = RunStatus::Running as i32;
    state.attempt = 0;
    state.stop_reason = None;
    state.last_error.clear();
    state.updated_at_ms = now_ms;
    let mut events = Vec::new();
    let step = state.next_step;
    push(&mut state, &mut events, EventKind::RunRequeued, now_ms, |e| {
        e.step = step;
        e.detail = format!("requeued by {by}");
    });
    Transition { state, events, next: Next::Advance { step, attempt: 0 } }
}

/// How one step ended, for metrics: the tool it called (or was about to call; empty if none)
/// and an outcome from a small fixed set — the recorded step's outcome (`completed`, `failed`,
/// `rejected`, `drafted`) when the step added a record, else what the run does next (`proposed`,
/// `retry`, `waiting`, `held`, `dead_lettered`, `finished`). `before` is [`step_start`] of the
/// state the step started from.
pub fn step_labels(before: &StepStart, t: &Transition) -> (String, &'static str) {
    if t.state.steps.len() > before.steps {
        if let Some(record) = t.state.steps.last() {
            let outcome = match record.outcome() {
                StepOutcome::Unspecified | StepOutcome::Completed => "completed",
                StepOutcome::Rejected => "rejected",
                StepOutcome::Drafted => "drafted",
                StepOutcome::Failed => "failed",
            };
            return (record.tool.clone(), outcome);
        }
    }
    let tool = pending_tool(&t.state).unwrap_or_else(|| before.tool.clone());
    let outcome = match &t.next {
        Next::Advance { .. } | Next::Execute => "proposed",
        Next::Retry { .. } => "retry",
        Next::Wait { .. } => "waiting",
        Next::Hold => "held",
        Next::DeadLetter { .. } => "dead_lettered",
        Next::Nothing => "finished",
    };
    (tool, outcome)
}

/// What [`step_labels`] needs of the state a step started from (cheap: no clone of the state).
#[derive(Debug, Clone, Default)]
pub struct StepStart {
    /// Step records the state held.
    pub steps: usize,
    /// Tool of its pending call, if any.
    pub tool: String,
}

/// The [`StepStart`] of `state`.
pub fn step_start(state: &RunState) -> StepStart {
    StepStart { steps: state.steps.len(), tool: pending_tool(state).unwrap_or_default() }
}

fn pending_tool(state: &RunState) -> Option<String> {
    state.pending.as_ref().and_then(|p| p.call.as_ref()).map(|c| c.tool.clone())
}

/// A stop reason.
pub fn reason(code: &str, message: impl Into<String>) -> StopReason {
    StopReason { code: code.to_string(), message: message.into(), by: String::new() }
}

/// Fills the step fields of an event.
pub fn fill_step(e: &mut RunEvent, step: u32, attempt: u32, tool: &str, key: &str, detail: String, ctx: &StepContext) {
    e.step = step;
    e.attempt = attempt;
    e.tool = tool.to_string();
    e.idempotency_key = key.to_string();
    e.detail = detail;
    e.worker = ctx.worker.clone();
    e.fence = ctx.fence;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::catalog::Catalog;
    use crate::plan::{model_spec, script_spec, Action};

    fn run(n: usize) -> RunState {
        let args: Vec<String> = (0..n).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
        let steps: Vec<(&str, &str)> = args.iter().map(|a| ("echo", a.as_str())).collect();
        admit("r", "t", "", script_spec(&steps), &Policy::default(), &Catalog::builtins(), 0).unwrap()
    }

    fn ctx() -> StepContext {
        StepContext { worker: "w1".into(), fence: 7, started_at_ms: 10, now_ms: 20, retry_tiers_ms: Vec::new() }
    }

    fn call(state: &RunState) -> ToolCall {
        match crate::plan::script_proposal(state).action {
            Action::Call(c) => c,
            Action::Finish(_) => panic!("plan finished"),
        }
    }

    fn ok() -> Outcome {
        Outcome::Completed { output_json: "{}".into() }
    }

    #[test]
    fn completing_a_middle_step_advances() {
        let s = run(3);
        let c = call(&s);
        let t = apply_outcome(s, &c, ok(), &ctx(), 0.0);
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
        assert_eq!(t.state.status(), RunStatus::Running);
        assert_eq!(t.state.steps.len(), 1);
        assert_eq!(t.state.steps[0].idempotency_key, "r:0");
        assert_eq!(t.events.len(), 1);
        assert_eq!(t.events[0].kind(), EventKind::StepCompleted);
        assert_eq!(t.events[0].seq, 1);
        assert_eq!(t.events[0].fence, 7);
    }

    #[test]
    fn step_labels_name_the_tool_and_how_the_step_ended() {
        let s = run(3);
        let c = call(&s);
        let start = step_start(&s);
        let t = apply_outcome(s.clone(), &c, ok(), &ctx(), 0.0);
        assert_eq!(step_labels(&start, &t), ("echo".to_string(), "completed"));
        let t = apply_outcome(s.clone(), &c, Outcome::Held { error: "off".into(), until_ms: 99 }, &ctx(), 0.0);
        assert_ne!(step_labels(&start, &t).1, "completed");
        let t = finish(s, RunStatus::Cancelled, reason("cancelled", "by test"), 30);
        assert_eq!(step_labels(&start, &t), (String::new(), "finished"));
    }

    #[test]
    fn completing_the_last_step_succeeds_the_run() {
        let mut s = run(2);
        for expected_seq in [1, 2] {
            let c = call(&s);
            let t = apply_outcome(s, &c, ok(), &ctx(), 0.0);
            assert_eq!(t.events[0].seq, expected_seq);
            s = t.state;
            if expected_seq == 2 {
                assert_eq!(t.next, Next::Nothing);
                assert_eq!(t.events.last().unwrap().kind(), EventKind::RunFinished);
                assert_eq!(t.events.last().unwrap().seq, 3);
            }
        }
        assert_eq!(s.status(), RunStatus::Succeeded);
        assert_eq!(s.stop_reason.unwrap().code, "completed");
        assert_eq!(s.steps.iter().map(|r| r.step).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn non_retryable_failure_fails_the_run_with_reason() {
        let s = run(2);
        let c = call(&s);
        let t = apply_outcome(s, &c, Outcome::fatal("bad"), &ctx(), 0.0);
        assert_eq!(t.next, Next::Nothing);
        assert_eq!(t.state.status(), RunStatus::Failed);
        assert_eq!(t.state.stop_reason.as_ref().unwrap().code, "tool_error");
        let kinds: Vec<_> = t.events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, vec![EventKind::StepFailed, EventKind::RunFinished]);
    }

    #[test]
    fn retryable_failure_retries_same_step_then_dead_letters() {
        let mut s = run(1);
        s.retry.as_mut().unwrap().max_attempts = 2;
        let c = call(&s);
        let fail = || Outcome::retryable("503");
        let t = apply_outcome(s, &c, fail(), &ctx(), 0.0);
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 1_000, not_before_ms: 20 + 1_000 });
        assert_eq!(t.events[0].not_before_ms, 20 + 1_000);
        assert_eq!(t.state.attempt, 1);
        assert_eq!(t.state.last_error, "503");
        let t = apply_outcome(t.state, &c, fail(), &ctx(), 0.0);
        assert_eq!(t.next, Next::DeadLetter { step: 0, tool: "echo".into(), attempts: 2, error: "503".into() });
        assert_eq!(t.state.status(), RunStatus::DeadLettered);
        assert_eq!(t.state.stop_reason.unwrap().code, "retries_exhausted");
    }

    #[test]
    fn a_retry_waits_its_tier_delay() {
        let mut s = run(1);
        s.retry.as_mut().unwrap().initial_backoff_ms = 2_500;
        let c = call(&s);
        let ctx = StepContext { retry_tiers_ms: vec![1_000, 10_000], ..ctx() };
        let t = apply_outcome(s, &c, Outcome::retryable("x"), &ctx, 0.0);
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 1_000, not_before_ms: 20 + 1_000 });
        assert_eq!(t.events[0].not_before_ms, 20 + 1_000);
    }

    #[test]
    fn wait_parks_the_run_then_wake_resumes_it() {
        let s = run(2);
        let call = ToolCall { tool: "wait".into(), args_json: r#"{"ms":500}"#.into() };
        let t = apply_outcome(s, &call, Outcome::Waiting { wake_at_ms: 520 }, &ctx(), 0.0);
        assert_eq!(t.next, Next::Wait { wake_at_ms: 520 });
        assert_eq!(t.state.status(), RunStatus::Waiting);
        assert_eq!(t.state.next_step, 1);
        let kinds: Vec<_> = t.events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, vec![EventKind::StepCompleted, EventKind::RunWaiting]);
        let w = wake(t.state, 600);
        assert_eq!(w.state.status(), RunStatus::Running);
        assert_eq!(w.next, Next::Advance { step: 1, attempt: 0 });
        assert_eq!(w.events[0].kind(), EventKind::RunResumed);
        assert_eq!(w.events[0].seq, 3);
    }

    #[test]
    fn a_past_wake_time_does_not_wait() {
        let s = run(2);
        let call = ToolCall { tool: "wait".into(), args_json: r#"{"until_ms":1}"#.into() };
        let t = apply_outcome(s, &call, Outcome::Waiting { wake_at_ms: 1 }, &ctx(), 0.0);
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
    }

    #[test]
    fn requeue_resets_attempts_and_resumes_at_the_failed_step() {
        let mut s = run(2);
        s.retry.as_mut().unwrap().max_attempts = 1;
        let c = call(&s);
        let t = apply_outcome(s, &c, Outcome::retryable("x"), &ctx(), 0.0);
        assert_eq!(t.state.status(), RunStatus::DeadLettered);
        let r = requeue(t.state, "ops", 50);
        assert_eq!(r.state.status(), RunStatus::Running);
        assert_eq!(r.next, Next::Advance { step: 0, attempt: 0 });
        assert!(r.state.stop_reason.is_none());
    }

    #[test]
    fn finish_records_reason_and_event() {
        let s = run(1);
        let t = finish(s, RunStatus::TimedOut, reason("deadline", "late"), 99);
        assert_eq!(t.state.status(), RunStatus::TimedOut);
        assert_eq!(t.events[0].stop_reason.as_ref().unwrap().code, "deadline");
        assert_eq!(t.events[0].status(), RunStatus::TimedOut);
    }

    #[test]
    fn a_retry_after_is_honoured_by_a_long_enough_tier() {
        let s = run(1);
        let c = call(&s);
        let ctx = StepContext { retry_tiers_ms: vec![1_000, 10_000, 60_000], ..ctx() };
        let busy = Outcome::Failed { error: "429".into(), retryable: true, retry_after_ms: Some(2_000) };
        let t = apply_outcome(s, &c, busy, &ctx, 0.0);
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 10_000, not_before_ms: 20 + 10_000 });
    }

    #[test]
    fn a_model_run_hears_of_a_failed_tool_and_goes_on() {
        let s = admit("r", "t", "", model_spec("m", "g", &["echo"]), &Policy::for_tests(), &Catalog::builtins(), 0)
            .unwrap();
        let c = ToolCall { tool: "echo".into(), args_json: "{}".into() };
        let t = apply_outcome(s, &c, Outcome::fatal("404 no such order"), &ctx(), 0.0);
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
        assert_eq!(t.state.steps[0].outcome(), StepOutcome::Failed);
        assert_eq!(t.state.steps[0].error, "404 no such order");
        assert_eq!(t.state.usage.unwrap().tool_calls, 1);
        let t = apply_outcome(t.state, &c, ok(), &ctx(), 0.0);
        assert_eq!(t.next, Next::Advance { step: 2, attempt: 0 }, "only the planner ends a model run");
    }
}
