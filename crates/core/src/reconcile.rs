//! Calls whose outcome is uncertain. A non-idempotent `external` tool cannot be called twice
//! safely, so the worker commits a *started* marker on the pending call just before calling
//! it. A run recovered with that marker set (its worker died mid-call), or a call that timed
//! out, may or may not have happened: the runtime does not guess. The run waits with reason
//! `needs_reconciliation`, showing the call, its key and what is known, until an operator says
//! what happened: done (with its output), not done (run it again, same key) or failed.

use crate::events::push;
use crate::machine::{apply_outcome, Next, Outcome, StepContext, Transition};
use crate::step_idempotency_key;
use crate::v1::{EventKind, PendingCall, RunState, RunStatus, ToolCall};

/// The `wait_reason` of a run whose last call's outcome is uncertain.
pub const WAIT_REASON: &str = "needs_reconciliation";

/// What an operator says happened to the uncertain call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// It happened and returned this JSON output.
    Done {
        /// The call's output, JSON text.
        output_json: String,
    },
    /// It did not happen: run it again with the same idempotency key.
    NotDone,
    /// It failed.
    Fail,
}

impl Choice {
    /// `done`, `not_done` or `fail`.
    pub fn name(&self) -> &'static str {
        match self {
            Choice::Done { .. } => "done",
            Choice::NotDone => "not_done",
            Choice::Fail => "fail",
        }
    }
}

/// Why a reconciliation was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// The run does not wait for a reconciliation.
    #[error("run {run_id} does not need reconciliation (status {status})")]
    NotWaiting {
        /// The run.
        run_id: String,
        /// Its status ([`crate::status::describe`]).
        status: String,
    },
    /// The step quoted is not the step the run waits on.
    #[error("run {run_id} waits on step {current}, not step {given}")]
    WrongStep {
        /// The run.
        run_id: String,
        /// The step quoted.
        given: u32,
        /// The step it waits on.
        current: u32,
    },
}

/// Marks the pending call `call` as started by `worker` (the marker is committed before the
/// tool is called). A script's call becomes the pending call here.
pub fn mark_started(state: &mut RunState, call: &ToolCall, worker: &str, now_ms: i64) {
    let pending = state.pending.get_or_insert_with(|| PendingCall {
        call: Some(call.clone()),
        proposed_at_ms: now_ms,
        ..Default::default()
    });
    pending.started_at_ms = now_ms;
    pending.started_by = format!("{worker} (attempt {})", state.attempt);
}

/// Whether the committed pending call carries a started marker: it may have happened.
pub fn started(state: &RunState) -> bool {
    state.pending.as_ref().is_some_and(|p| p.started_at_ms > 0)
}

/// The run was recovered with `call` started and no result recorded: the worker that started it
/// stopped mid-call. It waits for an operator.
pub fn cut_off(state: RunState, call: &ToolCall, ctx: &StepContext) -> Transition {
    let pending = state.pending.clone().unwrap_or_default();
    let known = format!(
        "the call of {:?} with idempotency key {} was started at {} ms by {} and no result was recorded: that worker stopped mid-call",
        call.tool,
        step_idempotency_key(&state.run_id, state.next_step),
        pending.started_at_ms,
        pending.started_by
    );
    needs_reconciliation(state, call, known, ctx)
}

/// `call` went out and got no answer (`what`: a timeout, a lost connection). It waits for an
/// operator.
pub fn unanswered(state: RunState, call: &ToolCall, what: &str, ctx: &StepContext) -> Transition {
    let known = format!(
        "the call of {:?} with idempotency key {} went out at attempt {} and got no answer ({what}); it may or may not have taken effect",
        call.tool,
        step_idempotency_key(&state.run_id, state.next_step),
        state.attempt
    );
    needs_reconciliation(state, call, known, ctx)
}

/// The run waits for an operator: the pending call `call` may have happened. `known` says what
/// the runtime knows (who started it, when, what was seen).
fn needs_reconciliation(mut state: RunState, call: &ToolCall, known: String, ctx: &StepContext) -> Transition {
    let (step, attempt) = (state.next_step, state.attempt);
    state.status = RunStatus::Waiting as i32;
    state.wait_reason = WAIT_REASON.into();
    state.wake_at_ms = 0;
    state.updated_at_ms = ctx.now_ms;
    state.last_error = known.clone();
    let mut events = Vec::new();
    push(&mut state, &mut events, EventKind::NeedsReconciliation, ctx.now_ms, |e| {
        e.step = step;
        e.attempt = attempt;
        e.tool = call.tool.clone();
        e.args_json = call.args_json.clone();
        e.idempotency_key = step_idempotency_key(&e.run_id, step);
        e.detail = known;
        e.worker = ctx.worker.clone();
        e.fence = ctx.fence;
    });
    Transition { state, events, next: Next::Hold }
}

/// Checks that the run waits for a reconciliation of `step`.
pub fn check(state: &RunState, step: u32) -> Result<(), ReconcileError> {
    if state.status() != RunStatus::Waiting || state.wait_reason != WAIT_REASON {
        let status = crate::status::describe(state);
        return Err(ReconcileError::NotWaiting { run_id: state.run_id.clone(), status });
    }
    if step != state.next_step {
        return Err(ReconcileError::WrongStep { run_id: state.run_id.clone(), given: step, current: state.next_step });
    }
    Ok(())
}

/// Applies the operator's `choice` (after [`check`]). Done records the output and goes on; not
/// done dispatches the call again as the step's next attempt, same key; fail records the
/// failure (a script run fails; a planner hears about it).
pub fn resolve(mut state: RunState, choice: &Choice, actor: &str, comment: &str, now_ms: i64) -> Transition {
    let call = state.pending.as_ref().and_then(|p| p.call.clone()).unwrap_or_default();
    let (step, attempt) = (state.next_step, state.attempt);
    state.status = RunStatus::Running as i32;
    state.wait_reason.clear();
    state.last_error.clear();
    state.updated_at_ms = now_ms;
    if let Some(p) = state.pending.as_mut() {
        p.started_at_ms = 0;
        p.started_by.clear();
    }
    let why = if comment.is_empty() { String::new() } else { format!(": {comment}") };
    let mut events = Vec::new();
    push(&mut state, &mut events, EventKind::RunReconciled, now_ms, |e| {
        e.step = step;
        e.attempt = attempt;
        e.tool = call.tool.clone();
        e.idempotency_key = step_idempotency_key(&e.run_id, step);
        e.actor = actor.to_string();
        e.reason_code = choice.name().into();
        e.detail = format!(
            "{actor} says the call {}{why}",
            match choice {
                Choice::Done { .. } => "happened",
                Choice::NotDone => "did not happen",
                Choice::Fail => "failed",
            }
        );
    });
    let ctx =
        StepContext { worker: actor.to_string(), fence: 0, started_at_ms: now_ms, now_ms, retry_tiers_ms: Vec::new() };
    let outcome = match choice {
        Choice::NotDone => {
            state.attempt += 1;
            let next = Next::Advance { step, attempt: state.attempt };
            return Transition { state, events, next };
        }
        Choice::Done { output_json } => Outcome::Completed { output_json: output_json.clone() },
        Choice::Fail => Outcome::fatal(format!("reconciled as failed by {actor}{why}")),
    };
    let mut t = apply_outcome(state, &call, outcome, &ctx, 0.0);
    if let Some(record) = t.state.steps.iter_mut().rev().find(|r| r.step == step) {
        record.reconciled_by = actor.to_string();
    }
    events.extend(t.events);
    t.events = events;
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::catalog::Catalog;
    use crate::plan::{model_spec, script_spec};
    use crate::v1::StepOutcome;

    fn ctx() -> StepContext {
        StepContext { worker: "w1".into(), fence: 4, started_at_ms: 10, now_ms: 20, retry_tiers_ms: Vec::new() }
    }

    fn call() -> ToolCall {
        ToolCall { tool: "ledger".into(), args_json: r#"{"amount":3}"#.into() }
    }

    fn uncertain(script: bool) -> RunState {
        let spec = if script {
            script_spec(&[("ledger", r#"{"amount":3}"#), ("echo", "{}")])
        } else {
            model_spec("m", "g", &["ledger"])
        };
        let mut s = admit("r", "t", "", spec, &Policy::for_tests(), &Catalog::builtins(), 0).unwrap();
        mark_started(&mut s, &call(), "w1", 15);
        assert!(started(&s));
        cut_off(s, &call(), &ctx()).state
    }

    #[test]
    fn an_uncertain_call_waits_for_an_operator() {
        let mut s =
            admit("r", "t", "", model_spec("m", "g", &["ledger"]), &Policy::for_tests(), &Catalog::builtins(), 0)
                .unwrap();
        mark_started(&mut s, &call(), "w1", 15);
        assert_eq!(s.pending.as_ref().unwrap().started_by, "w1 (attempt 0)");
        let t = cut_off(s, &call(), &ctx());
        assert!(t.state.last_error.contains("started at 15 ms by w1 (attempt 0)"), "{}", t.state.last_error);
        assert_eq!(t.next, Next::Hold);
        assert_eq!((t.state.status(), t.state.wait_reason.as_str()), (RunStatus::Waiting, WAIT_REASON));
        let e = &t.events[0];
        assert_eq!(
            (e.kind(), e.idempotency_key.as_str(), e.tool.as_str()),
            (EventKind::NeedsReconciliation, "r:0", "ledger")
        );
        assert_eq!(check(&t.state, 0), Ok(()));
        assert!(matches!(check(&t.state, 1), Err(ReconcileError::WrongStep { current: 0, .. })));
        let t = unanswered(t.state, &call(), "timed out", &ctx());
        assert!(t.state.last_error.contains("r:0 went out at attempt 0 and got no answer (timed out)"));
    }

    #[test]
    fn done_records_the_output_and_goes_on() {
        let t = resolve(
            uncertain(true),
            &Choice::Done { output_json: r#"{"ok":true}"#.into() },
            "ops",
            "seen in the bank",
            30,
        );
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
        assert_eq!(t.events[0].kind(), EventKind::RunReconciled);
        assert_eq!(t.events[1].kind(), EventKind::StepCompleted);
        let rec = &t.state.steps[0];
        assert_eq!(
            (rec.outcome(), rec.output_json.as_str(), rec.reconciled_by.as_str()),
            (StepOutcome::Completed, r#"{"ok":true}"#, "ops")
        );
        assert!(t.state.pending.is_none());
    }

    #[test]
    fn not_done_runs_the_call_again_with_the_same_key() {
        let t = resolve(uncertain(false), &Choice::NotDone, "ops", "", 30);
        assert_eq!(t.next, Next::Advance { step: 0, attempt: 1 });
        assert!(!started(&t.state));
        assert_eq!(t.state.pending.as_ref().unwrap().call.as_ref().unwrap(), &call());
        assert_eq!(t.state.status(), RunStatus::Running);
    }

    #[test]
    fn fail_fails_a_script_and_tells_a_planner() {
        let t = resolve(uncertain(true), &Choice::Fail, "ops", "bank says no", 30);
        assert_eq!(t.state.status(), RunStatus::Failed);
        assert!(t.state.stop_reason.unwrap().message.contains("reconciled as failed by ops: bank says no"));
        let t = resolve(uncertain(false), &Choice::Fail, "ops", "", 30);
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
        assert_eq!(t.state.steps[0].outcome(), StepOutcome::Failed);
        assert_eq!(t.state.steps[0].reconciled_by, "ops");
    }
}
