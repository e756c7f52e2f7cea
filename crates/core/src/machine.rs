//! The run state machine: what a step's outcome does to the checkpoint, which events it emits,
//! and what must happen next (another step, a retry after a back-off, or nothing).

use crate::events::push;
use crate::plan::script_len;
use crate::status::is_terminal;
use crate::v1::{EventKind, RunEvent, RunState, RunStatus, StepRecord, StopReason, ToolCall};
use crate::{step_idempotency_key, v1::RetryPolicy};

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
}

/// How a tool call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The tool returned this JSON output.
    Completed {
        /// Tool output as JSON text.
        output_json: String,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Produce a task for this step and attempt now.
    Advance {
        /// Step to run.
        step: u32,
        /// Attempt of that step.
        attempt: u32,
    },
    /// Produce a task for this step and attempt after `delay_ms`.
    Retry {
        /// Step to retry.
        step: u32,
        /// Attempt number of the retry.
        attempt: u32,
        /// Back-off before the retry may run.
        delay_ms: u64,
    },
    /// The run is terminal (or waiting): no task.
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
        return Some((
            RunStatus::BudgetExhausted,
            reason("max_steps", format!("step budget of {max_steps} used up")),
        ));
    }
    None
}

/// Applies the outcome of the tool call for step `state.next_step`.
pub fn apply_outcome(mut state: RunState, call: &ToolCall, outcome: Outcome, ctx: &StepContext, jitter: f64) -> Transition {
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
                let t = finish(state, RunStatus::Succeeded, reason("completed", "all steps completed"), ctx.now_ms);
                events.extend(t.events);
                return Transition { state: t.state, events, next: Next::Nothing };
            }
            let next = Next::Advance { step: state.next_step, attempt: 0 };
            Transition { state, events, next }
        }
        Outcome::Failed { error, retryable } => {
            state.last_error = error.clone();
            push(&mut state, &mut events, EventKind::StepFailed, ctx.now_ms, |e| {
                fill_step(e, step, attempt, &call.tool, &key, error.clone(), ctx)
            });
            let policy = state.retry.clone().unwrap_or_default();
            if !retryable {
                let t = finish(state, RunStatus::Failed, reason("tool_error", format!("step {step} ({}): {error}", call.tool)), ctx.now_ms);
                events.extend(t.events);
                return Transition { state: t.state, events, next: Next::Nothing };
            }
            if attempt + 1 >= policy.max_attempts.max(1) {
                let msg = format!("step {step} ({}) failed {} times, last error: {error}", call.tool, attempt + 1);
                let t = finish(state, RunStatus::DeadLettered, reason("retries_exhausted", msg), ctx.now_ms);
                events.extend(t.events);
                return Transition { state: t.state, events, next: Next::Nothing };
            }
            state.attempt = attempt + 1;
            let delay_ms = backoff_ms(&policy, attempt, jitter);
            Transition { state, events, next: Next::Retry { step, attempt: attempt + 1, delay_ms } }
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

/// Back-off before retry number `attempt + 1`: exponential from the initial delay, capped,
/// with up to 20% jitter below the value (`jitter` in `[0, 1)`).
pub fn backoff_ms(policy: &RetryPolicy, attempt: u32, jitter: f64) -> u64 {
    let base = policy.initial_backoff_ms.max(1);
    let exp = base.saturating_mul(1u64 << attempt.min(32));
    let capped = exp.min(policy.max_backoff_ms.max(base));
    let cut = (capped as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as u64;
    capped - cut
}

/// A stop reason.
pub fn reason(code: &str, message: impl Into<String>) -> StopReason {
    StopReason { code: code.to_string(), message: message.into() }
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
    use crate::v1::{planner, Budget, Planner, RunSpec, ScriptPlan};

    fn run(n: usize) -> RunState {
        let spec = RunSpec {
            planner: Some(Planner {
                kind: Some(planner::Kind::Script(ScriptPlan {
                    steps: (0..n).map(|i| ToolCall { tool: "echo".into(), args_json: format!(r#"{{"i":{i}}}"#) }).collect(),
                })),
            }),
            ..Default::default()
        };
        admit("r", "t", "", spec, &Policy::default(), 0).unwrap()
    }

    fn ctx() -> StepContext {
        StepContext { worker: "w1".into(), fence: 7, started_at_ms: 10, now_ms: 20 }
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
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 1_000 });
        assert_eq!(t.state.attempt, 1);
        assert_eq!(t.state.last_error, "503");
        let t = apply_outcome(t.state, &c, fail(), &ctx(), 0.0);
        assert_eq!(t.next, Next::Nothing);
        assert_eq!(t.state.status(), RunStatus::DeadLettered);
        assert_eq!(t.state.stop_reason.unwrap().code, "retries_exhausted");
    }

    #[test]
    fn backoff_grows_caps_and_jitters_down() {
        let p = RetryPolicy { max_attempts: 10, initial_backoff_ms: 100, max_backoff_ms: 1_000 };
        assert_eq!(backoff_ms(&p, 0, 0.0), 100);
        assert_eq!(backoff_ms(&p, 1, 0.0), 200);
        assert_eq!(backoff_ms(&p, 3, 0.0), 800);
        assert_eq!(backoff_ms(&p, 4, 0.0), 1_000);
        assert_eq!(backoff_ms(&p, 60, 0.0), 1_000);
        assert_eq!(backoff_ms(&p, 4, 0.5), 900);
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
    fn finish_records_reason_and_event() {
        let s = run(1);
        let t = finish(s, RunStatus::TimedOut, reason("deadline", "late"), 99);
        assert_eq!(t.state.status(), RunStatus::TimedOut);
        assert_eq!(t.events[0].stop_reason.as_ref().unwrap().code, "deadline");
        assert_eq!(t.events[0].status(), RunStatus::TimedOut);
    }
}
