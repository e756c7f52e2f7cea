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
    /// Produce a task for this step and attempt after `delay_ms`.
    Retry {
        /// Step to retry.
        step: u32,
        /// Attempt number of the retry.
        attempt: u32,
        /// Back-off before the retry may run.
        delay_ms: u64,
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
                let t = finish(state, RunStatus::Succeeded, reason("completed", "all steps completed"), ctx.now_ms);
                events.extend(t.events);
                return Transition { state: t.state, events, next: Next::Nothing };
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
            let retry_at = (retryable && attempt + 1 < policy.max_attempts.max(1)).then(|| {
                let backoff = backoff_ms(&policy, attempt, jitter);
                let delay = crate::retry::tier_delay_ms(backoff, &ctx.retry_tiers_ms);
                ctx.now_ms + delay as i64
            });
            push(&mut state, &mut events, EventKind::StepFailed, ctx.now_ms, |e| {
                fill_step(e, step, attempt, &call.tool, &key, error.clone(), ctx);
                e.not_before_ms = retry_at.unwrap_or(0);
            });
            if !retryable {
                let t = finish(
                    state,
                    RunStatus::Failed,
                    reason("tool_error", format!("step {step} ({}): {error}", call.tool)),
                    ctx.now_ms,
                );
                events.extend(t.events);
                return Transition { state: t.state, events, next: Next::Nothing };
            }
            let Some(retry_at) = retry_at else {
                let msg = format!("step {step} ({}) failed {} times, last error: {error}", call.tool, attempt + 1);
                let t = finish(state, RunStatus::DeadLettered, reason("retries_exhausted", msg), ctx.now_ms);
                events.extend(t.events);
                let next = Next::DeadLetter { step, attempts: attempt + 1, error };
                return Transition { state: t.state, events, next };
            };
            state.attempt = attempt + 1;
            let delay_ms = (retry_at - ctx.now_ms).max(0) as u64;
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

/// A request, from outside the run, to stop it: a cancel or an overdue deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    /// `Cancelled` or `TimedOut`.
    pub status: RunStatus,
    /// Stop reason code, e.g. `cancelled`, `deadline`.
    pub code: String,
    /// Who asked, e.g. `tenant:acme`, `reaper`.
    pub by: String,
    /// Free text, e.g. the canceller's reason.
    pub message: String,
}

impl StopRequest {
    /// The form stored in the run's `stop` field: `status|code|by|message`.
    pub fn encode(&self) -> String {
        format!("{}|{}|{}|{}", crate::status::name(self.status), self.code, self.by.replace('|', "/"), self.message)
    }

    /// Inverse of [`StopRequest::encode`].
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(4, '|');
        let status = crate::status::parse(parts.next()?)?;
        Some(Self { status, code: parts.next()?.into(), by: parts.next()?.into(), message: parts.next()?.into() })
    }

    /// Ends the run as asked.
    pub fn apply(&self, state: RunState, now_ms: i64) -> Transition {
        let why = StopReason { code: self.code.clone(), message: self.message.clone(), by: self.by.clone() };
        finish(state, self.status, why, now_ms)
    }
}

/// Back-off before retry number `attempt + 1`: exponential from the initial delay, plus up to
/// 20% jitter (`jitter` in `[0, 1)`), capped. Jitter only adds, so a back-off never falls
/// below the retry tier its un-jittered value selects.
pub fn backoff_ms(policy: &RetryPolicy, attempt: u32, jitter: f64) -> u64 {
    let base = policy.initial_backoff_ms.max(1);
    let cap = policy.max_backoff_ms.max(base);
    let exp = base.saturating_mul(1u64 << attempt.min(32)).min(cap);
    let extra = (exp as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as u64;
    exp.saturating_add(extra).min(cap)
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
    use crate::v1::{planner, Budget, Planner, RunSpec, ScriptPlan};

    fn run(n: usize) -> RunState {
        let spec = RunSpec {
            planner: Some(Planner {
                kind: Some(planner::Kind::Script(ScriptPlan {
                    steps: (0..n)
                        .map(|i| ToolCall { tool: "echo".into(), args_json: format!(r#"{{"i":{i}}}"#) })
                        .collect(),
                })),
            }),
            ..Default::default()
        };
        admit("r", "t", "", spec, &Policy::default(), 0).unwrap()
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
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 1_000 });
        assert_eq!(t.events[0].not_before_ms, 20 + 1_000);
        assert_eq!(t.state.attempt, 1);
        assert_eq!(t.state.last_error, "503");
        let t = apply_outcome(t.state, &c, fail(), &ctx(), 0.0);
        assert_eq!(t.next, Next::DeadLetter { step: 0, attempts: 2, error: "503".into() });
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
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 1_000 });
        assert_eq!(t.events[0].not_before_ms, 20 + 1_000);
    }

    #[test]
    fn backoff_grows_caps_and_jitters_down() {
        let p = RetryPolicy { max_attempts: 10, initial_backoff_ms: 100, max_backoff_ms: 1_000 };
        assert_eq!(backoff_ms(&p, 0, 0.0), 100);
        assert_eq!(backoff_ms(&p, 1, 0.0), 200);
        assert_eq!(backoff_ms(&p, 3, 0.0), 800);
        assert_eq!(backoff_ms(&p, 4, 0.0), 1_000);
        assert_eq!(backoff_ms(&p, 60, 0.0), 1_000);
        assert_eq!(backoff_ms(&p, 4, 0.5), 1_000, "the cap holds with jitter");
        assert_eq!(backoff_ms(&p, 1, 0.5), 220);
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
    fn stop_requests_round_trip_and_apply() {
        let req = StopRequest {
            status: RunStatus::Cancelled,
            code: "cancelled".into(),
            by: "tenant:a|b".into(),
            message: "no | more".into(),
        };
        let back = StopRequest::decode(&req.encode()).unwrap();
        assert_eq!(back.message, "no | more");
        assert_eq!(back.by, "tenant:a/b");
        let t = back.apply(run(1), 9);
        assert_eq!(t.state.status(), RunStatus::Cancelled);
        assert_eq!(t.state.stop_reason.unwrap().by, "tenant:a/b");
        assert_eq!(StopRequest::decode("bogus"), None);
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
