//! What a tool call's outcome does to a run: a completed call is recorded and the run moves on
//! (or succeeds, past a script's last step); a `wait` parks the run on a timer; a held call is
//! tried again later without spending an attempt; a failure is retried, dead-lettered, ends the
//! run, or is shown to the planner.

use super::lifecycle::{finish_after, reason};
use super::{Next, Outcome, StepContext, Transition};
use crate::events::push;
use crate::plan::{is_script, script_len};
use crate::step_idempotency_key;
use crate::v1::{EventKind, RunEvent, RunState, RunStatus, StepOutcome, StepRecord, ToolCall, Usage};

/// Applies the outcome of the tool call for step `state.next_step`. A completed call is
/// recorded and the run moves on; a `wait` is recorded and the run waits for its timer, even
/// after a script's last step (waking it then ends the run); a retryable failure keeps the step
/// (and its committed proposal) for another attempt; a failure for good ends a script run
/// `failed`, and is recorded and shown to any other planner so it can try another way.
pub fn apply_outcome(
    mut state: RunState,
    call: &ToolCall,
    outcome: Outcome,
    ctx: &StepContext,
    jitter: f64,
) -> Transition {
    state.status = RunStatus::Running as i32;
    state.updated_at_ms = ctx.now_ms;
    if let (Outcome::Held { .. } | Outcome::Failed { .. }, Some(p)) = (&outcome, state.pending.as_mut()) {
        // The call's outcome is known (it failed, or was never made): a retry is a fresh start.
        p.started_at_ms = 0;
        p.started_by.clear();
    }
    match outcome {
        Outcome::Completed { output_json } => {
            let events = complete(&mut state, call, output_json, ctx);
            if is_script(&state) && state.next_step >= script_len(&state) {
                let why = reason("completed", "all steps completed");
                return finish_after(state, events, RunStatus::Succeeded, why, ctx.now_ms, Next::Nothing);
            }
            let next = Next::Advance { step: state.next_step, attempt: 0 };
            Transition { state, events, next }
        }
        Outcome::Waiting { wake_at_ms } => {
            let output_json = format!(r#"{{"wake_at_ms":{wake_at_ms}}}"#);
            if wake_at_ms <= ctx.now_ms {
                // Already due: the wait is over before it began.
                return apply_outcome(state, call, Outcome::Completed { output_json }, ctx, jitter);
            }
            let mut events = complete(&mut state, call, output_json, ctx);
            state.status = RunStatus::Waiting as i32;
            state.wait_reason = "timer".into();
            state.wake_at_ms = wake_at_ms;
            let step = state.next_step;
            push(&mut state, &mut events, EventKind::RunWaiting, ctx.now_ms, |e| {
                e.step = step;
                e.not_before_ms = wake_at_ms;
                e.detail = "timer".into();
            });
            Transition { state, events, next: Next::Wait { wake_at_ms } }
        }
        Outcome::Held { error, until_ms } => held(state, call, error, until_ms, ctx),
        Outcome::Failed { error, retryable, retry_after_ms } => {
            failed(state, call, error, retryable, retry_after_ms, ctx, jitter)
        }
    }
}

/// Records the completed call of step `state.next_step` and its STEP_COMPLETED event.
fn complete(state: &mut RunState, call: &ToolCall, output_json: String, ctx: &StepContext) -> Vec<RunEvent> {
    let (step, attempt) = (state.next_step, state.attempt);
    let key = step_idempotency_key(&state.run_id, step);
    let usage = record_step(state, call, ctx, StepOutcome::Completed, |r| r.output_json = output_json.clone());
    let mut events = Vec::new();
    push(state, &mut events, EventKind::StepCompleted, ctx.now_ms, |e| {
        fill_step(e, step, attempt, &call.tool, &key, output_json, ctx);
        e.usage = Some(usage);
    });
    events
}

/// The call was not made (breaker open, tool disabled): the same attempt is tried again after
/// the retry tier that covers `until_ms`.
fn held(mut state: RunState, call: &ToolCall, error: String, until_ms: i64, ctx: &StepContext) -> Transition {
    let (step, attempt) = (state.next_step, state.attempt);
    let key = step_idempotency_key(&state.run_id, step);
    state.last_error = error.clone();
    let wait_ms = (until_ms - ctx.now_ms).max(1) as u64;
    let delay_ms = crate::retry::tier_at_least_ms(wait_ms, &ctx.retry_tiers_ms);
    let not_before_ms = ctx.now_ms + delay_ms as i64;
    let mut events = Vec::new();
    push(&mut state, &mut events, EventKind::StepFailed, ctx.now_ms, |e| {
        fill_step(e, step, attempt, &call.tool, &key, error, ctx);
        e.reason_code = "held".into();
        e.not_before_ms = not_before_ms;
    });
    Transition { state, events, next: Next::Retry { step, attempt, delay_ms, not_before_ms } }
}

/// The call failed: another planner hears of a failure for good; a script run fails; a
/// retryable failure is retried after its back-off until the attempts run out (dead letter).
fn failed(
    mut state: RunState,
    call: &ToolCall,
    error: String,
    retryable: bool,
    retry_after_ms: Option<u64>,
    ctx: &StepContext,
    jitter: f64,
) -> Transition {
    let (step, attempt) = (state.next_step, state.attempt);
    let key = step_idempotency_key(&state.run_id, step);
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
    let mut events = Vec::new();
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
        let why = reason("retries_exhausted", msg);
        return finish_after(state, events, RunStatus::DeadLettered, why, ctx.now_ms, next);
    };
    state.attempt = attempt + 1;
    Transition { state, events, next: Next::Retry { step, attempt: attempt + 1, delay_ms, not_before_ms } }
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
    use crate::machine::fixtures::{call, ctx, ok, run, script_run};
    use crate::machine::wake;
    use crate::plan::model_spec;

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
    fn a_retry_after_is_honoured_by_a_long_enough_tier() {
        let s = run(1);
        let c = call(&s);
        let ctx = StepContext { retry_tiers_ms: vec![1_000, 10_000, 60_000], ..ctx() };
        let busy = Outcome::Failed { error: "429".into(), retryable: true, retry_after_ms: Some(2_000) };
        let t = apply_outcome(s, &c, busy, &ctx, 0.0);
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 1, delay_ms: 10_000, not_before_ms: 20 + 10_000 });
    }

    #[test]
    fn a_held_call_is_tried_again_at_the_same_attempt() {
        let s = run(1);
        let c = call(&s);
        let t = apply_outcome(s, &c, Outcome::Held { error: "breaker open".into(), until_ms: 520 }, &ctx(), 0.0);
        assert_eq!(t.next, Next::Retry { step: 0, attempt: 0, delay_ms: 500, not_before_ms: 520 });
        assert_eq!((t.state.status(), t.state.attempt), (RunStatus::Running, 0));
        assert_eq!(t.events[0].reason_code, "held");
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
    fn a_wait_as_the_last_step_parks_the_run_until_its_timer() {
        let s = script_run(&[("wait", r#"{"ms":3600000}"#)]);
        let c = call(&s);
        let wake_at_ms = 20 + 3_600_000;
        let t = apply_outcome(s, &c, Outcome::Waiting { wake_at_ms }, &ctx(), 0.0);
        assert_eq!(t.next, Next::Wait { wake_at_ms });
        assert_eq!((t.state.status(), t.state.wait_reason.as_str()), (RunStatus::Waiting, "timer"));
        assert!(t.state.stop_reason.is_none(), "a waiting run has not ended");
        let kinds: Vec<_> = t.events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, vec![EventKind::StepCompleted, EventKind::RunWaiting]);
        assert_eq!(t.events[1].not_before_ms, wake_at_ms);
    }

    #[test]
    fn a_past_wake_time_does_not_wait() {
        let s = run(2);
        let call = ToolCall { tool: "wait".into(), args_json: r#"{"until_ms":1}"#.into() };
        let t = apply_outcome(s, &call, Outcome::Waiting { wake_at_ms: 1 }, &ctx(), 0.0);
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
        let last = script_run(&[("wait", r#"{"until_ms":1}"#)]);
        let t = apply_outcome(last, &call, Outcome::Waiting { wake_at_ms: 1 }, &ctx(), 0.0);
        assert_eq!((t.next, t.state.status()), (Next::Nothing, RunStatus::Succeeded), "a past last wait ends the run");
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
