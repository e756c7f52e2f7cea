//! A run's lifecycle outside a tool call: ending it ([`finish`]), waking it from a timer
//! ([`wake`]) and resuming it from the dead-letter queue ([`requeue`]).

use super::{Next, Transition};
use crate::events::push;
use crate::plan::{is_script, script_len};
use crate::status::is_terminal;
use crate::v1::{EventKind, RunEvent, RunState, RunStatus, StopReason};

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

/// Wakes a waiting run: it continues at its next step. A script run whose wait was its last
/// step has nothing left to do: it succeeds (RUN_RESUMED, then RUN_FINISHED).
pub fn wake(mut state: RunState, now_ms: i64) -> Transition {
    state.status = RunStatus::Running as i32;
    state.wake_at_ms = 0;
    state.wait_reason.clear();
    state.updated_at_ms = now_ms;
    let mut events = Vec::new();
    let step = state.next_step;
    push(&mut state, &mut events, EventKind::RunResumed, now_ms, |e| e.step = step);
    if is_script(&state) && step >= script_len(&state) {
        let why = reason("completed", "all steps completed");
        return finish_after(state, events, RunStatus::Succeeded, why, now_ms, Next::Nothing);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::fixtures::{call, ctx, run, script_run};
    use crate::machine::{apply_outcome, Outcome};

    #[test]
    fn finish_records_reason_and_event() {
        let s = run(1);
        let t = finish(s, RunStatus::TimedOut, reason("deadline", "late"), 99);
        assert_eq!(t.state.status(), RunStatus::TimedOut);
        assert_eq!(t.events[0].stop_reason.as_ref().unwrap().code, "deadline");
        assert_eq!(t.events[0].status(), RunStatus::TimedOut);
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
    fn waking_after_a_scripts_last_step_succeeds_the_run() {
        let s = script_run(&[("echo", "{}"), ("wait", r#"{"ms":500}"#)]);
        let c = call(&s);
        let s = apply_outcome(s, &c, crate::machine::fixtures::ok(), &ctx(), 0.0).state;
        let c = call(&s);
        let parked = apply_outcome(s, &c, Outcome::Waiting { wake_at_ms: 520 }, &ctx(), 0.0);
        assert_eq!(parked.state.status(), RunStatus::Waiting);
        let w = wake(parked.state, 600);
        assert_eq!(w.next, Next::Nothing);
        assert_eq!(w.state.status(), RunStatus::Succeeded);
        assert_eq!(w.state.stop_reason.as_ref().unwrap().code, "completed");
        assert_eq!((w.state.wake_at_ms, w.state.wait_reason.as_str()), (0, ""));
        let kinds: Vec<_> = w.events.iter().map(|e| (e.kind(), e.seq)).collect();
        assert_eq!(kinds, vec![(EventKind::RunResumed, 4), (EventKind::RunFinished, 5)]);
        assert_eq!(w.events[1].status(), RunStatus::Succeeded);
    }
}
