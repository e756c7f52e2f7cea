//! The run state machine: what a step's outcome does to the checkpoint, which events it emits,
//! and what must happen next (another step, a retry after a back-off, or nothing).

use crate::events::push;
use crate::plan::script_len;
use crate::status::is_terminal;
use crate::step_idempotency_key;
use crate::v1::{EventKind, RunEvent, RunState, RunStatus, StepRecord, StopReason, ToolCall};

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
    /// The tool failed.
    Failed {
        /// What went wrong.
        error: String,
        /// Whether trying again may succeed (timeouts, 5xx) or not (bad arguments).
        retryable: bool,
    },
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
    /// The run waits for a timer: index it in the timers, no task.
    Wait {
        /// When to wake (ms since epoch).
        wake_at_ms: i64,
    },
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

/// Why a claimed run must stop before its next step runs, if it must: past its deadline,
/// or out of steps.
pub fn check_bounds(state: &RunState, now_ms: i64) -> Option<(RunStatus, StopReason)> {
    if state.deadline_at_ms > 0 && now_ms >= state.deadline_at_ms {
        return Some((
            RunStatus::TimedOut,
            reason("deadline", format!("wall-clock deadline passed at step {}", state.next_step)),
        ));
    }
    let max_steps = state.budget.as_ref().map_or(0, |b| b.max_steps);
    if max_steps > 0 && state.next_step >= max_steps && state.next_step < script_len(state) {
        return Some((RunStatus::BudgetExhausted, reason("max_steps", format!("step budget of {max_steps} used up"))));
    }
    None
}

/// Applies the outcome of the tool call for step `state.next_step`.
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
    let mut events = Vec::new();
    match outcome {
        Outcome::Completed { output_json } => {
            state.steps.push(StepRecord {
                step,
                tool: call.tool.clone(),
                args_json: call.args_json.clone(),
                output_json: output_json.clone(),
                idempotency_key: key.clone(),
                attempt,
                started_at_ms: ctx.started_at_ms,
                finished_at_ms: ctx.now_ms,
                worker: ctx.worker.clone(),
            });
            state.next_step += 1;
            state.attempt = 0;
            state.last_error.clear();
            let done = state.next_step >= script_len(&state);
            push(&mut state, &mut events, EventKind::StepCompleted, ctx.now_ms, |e| {
                fill_step(e, step, attempt, &call.tool, &key, output_json, ctx)
            });
            if done {
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
        Outcome::Failed { error, retryable } => {
            state.last_error = error.clone();
            let policy = state.retry.unwrap_or_default();
            let delay_ms = (retryable && attempt + 1 < policy.max_attempts.max(1)).then(|| {
                crate::retry::tier_delay_ms(crate::retry::backoff_ms(&policy, attempt, jitter), &ctx.retry_tiers_ms)
            });
            let not_before_ms = delay_ms.map_or(0, |d| ctx.now_ms + d as i64);
            push(&mut state, &mut events, EventKind::StepFailed, ctx.now_ms, |e| {
                fill_step(e, step, attempt, &call.tool, &key, error.clone(), ctx);
                e.not_before_ms = not_before_ms;
            });
            if !retryable {
                let why = reason("tool_error", format!("step {step} ({}): {error}", call.tool));
                return finish_after(state, events, RunStatus::Failed, why, ctx.now_ms, Next::Nothing);
            }
            let Some(delay_ms) = delay_ms else {
                let msg = format!("step {step} ({}) failed {} times, last error: {error}", call.tool, attempt + 1);
                let next = Next::DeadLetter { step, tool: call.tool.clone(), attempts: attempt + 1, error };
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

/// Ends the run with `status` (which must be terminal) and emits RUN_FINISHED.
pub fn finish(mut state: RunState, status: RunStatus, stop: StopReason, now_ms: i64) -> Transition {
    debug_assert!(is_terminal(status), "finish needs a terminal status, got {status:?}");
    state.status = status as i32;
    state.updated_at_ms = now_ms;
    state.stop_reason = Some(stop.clone());
    let step_at_finish = state.next_step;
    let mut events = Vec::new();
    push(&mut state, &mut events, EventKind::RunFinished, now_ms, |e| {
        e.step = step_at_finish;
        e.stop_reason = Some(stop);
    });
    Transition { state, events, next: Next::Nothing }
}

/// Ends the run after the step events already in `events`; `next` is what is still to hand
/// on (a dead letter, or nothing).
fn finish_after(
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

/// A stop reason.
pub fn reason(code: &str, message: impl Into<String>) -> StopReason {
    StopReason { code: code.to_string(), message: message.into(), by: String::new() }
}

fn fill_step(e: &mut RunEvent, step: u32, attempt: u32, tool: &str, key: &str, detail: String, ctx: &StepContext) {
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
    use crate::plan::script_spec;
    use crate::v1::Budget;

    fn run(n: usize) -> RunState {
        let args: Vec<String> = (0..n).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
        let steps: Vec<(&str, &str)> = args.iter().map(|a| ("echo", a.as_str())).collect();
        admit("r", "t", "", script_spec(&steps), &Policy::default(), 0).unwrap()
    }

    fn ctx() -> StepContext {
        StepContext { worker: "w1".into(), fence: 7, started_at_ms: 10, now_ms: 20, retry_tiers_ms: Vec::new() }
    }

    fn call(state: &RunState) -> ToolCall {
        match crate::plan::script_proposal(state) {
            crate::plan::Proposal::Call(c) => c,
            crate::plan::Proposal::Finish => panic!("plan finished"),
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
        let t = apply_outcome(s, &c, Outcome::Failed { error: "bad".into(), retryable: false }, &ctx(), 0.0);
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
        let fail = || Outcome::Failed { error: "503".into(), retryable: true };
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
        let t = apply_outcome(s, &c, Outcome::Failed { error: "x".into(), retryable: true }, &ctx, 0.0);
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 1_000, not_before_ms: 20 + 1_000 });
        assert_eq!(t.events[0].not_before_ms, 20 + 1_000);
    }

    #[test]
    fn deadline_and_step_budget_stop_a_run() {
        let mut s = run(5);
        assert_eq!(check_bounds(&s, 1), None);
        let deadline = s.deadline_at_ms;
        assert_eq!(check_bounds(&s, deadline).unwrap().0, RunStatus::TimedOut);
        s.budget = Some(Budget { max_steps: 2, ..s.budget.unwrap() });
        s.next_step = 2;
        let (status, why) = check_bounds(&s, 1).unwrap();
        assert_eq!(status, RunStatus::BudgetExhausted);
        assert_eq!(why.code, "max_steps");
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
        let t = apply_outcome(s, &c, Outcome::Failed { error: "x".into(), retryable: true }, &ctx(), 0.0);
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
}
