//! What a planner's proposal does to a run before any tool runs. An accepted call becomes the
//! run's pending call, committed before the tool starts, so a retried or recovered step runs
//! exactly that call and never asks the planner again. A rejected call is recorded and fed back
//! to the planner (a script run is refused instead); a draft is recorded instead of running (and
//! ends an advisory or `drafts_for_review` run); a finish ends the run with the planner's result;
//! a proposal past a budget is recorded, not run, and ends the run. Every path charges the
//! planner's spend.

use serde_json::json;

use crate::budget;
use crate::events::push;
use crate::machine::{finish, finish_after, reason, Next, StepContext, Transition};
use crate::plan::{is_script, script_len};
use crate::v1::{EventKind, PendingCall, RunState, RunStatus, StepOutcome, StepRecord, StopReason, ToolCall, Usage};

/// Adds a planner call's spend to the run.
pub fn charge(state: &mut RunState, usage: &Usage) {
    budget::add(state.usage.get_or_insert_with(Usage::default), usage);
}

/// Accepts `call` for step `state.next_step`: it becomes the pending call the tool runs next
/// (`Next::Execute`). A planner's proposal emits STEP_PROPOSED; a script's is already durable
/// in its spec and is neither recorded nor committed.
pub fn accept(mut state: RunState, call: &ToolCall, usage: Usage, text: String, ctx: &StepContext) -> Transition {
    let mut events = Vec::new();
    if is_script(&state) {
        return Transition { state, events, next: Next::Execute };
    }
    charge(&mut state, &usage);
    state.status = RunStatus::Running as i32;
    state.updated_at_ms = ctx.now_ms;
    let step = state.next_step;
    push(&mut state, &mut events, EventKind::StepProposed, ctx.now_ms, |e| {
        e.step = step;
        e.tool = call.tool.clone();
        e.args_json = call.args_json.clone();
        e.detail = text.clone();
        e.usage = Some(usage);
        e.worker = ctx.worker.clone();
        e.fence = ctx.fence;
    });
    state.pending = Some(PendingCall {
        call: Some(call.clone()),
        usage: Some(usage),
        model_text: text,
        proposed_at_ms: ctx.now_ms,
        ..Default::default()
    });
    Transition { state, events, next: Next::Execute }
}

/// Refuses `call`. A script run ends `refused`; another planner is told why (the step is
/// recorded as rejected) and asked again, until its rejection budget is spent.
pub fn reject(
    mut state: RunState,
    call: &ToolCall,
    code: &str,
    message: String,
    usage: Usage,
    ctx: &StepContext,
) -> Transition {
    let step = state.next_step;
    if is_script(&state) {
        return finish(
            state,
            RunStatus::Refused,
            reason(code, format!("step {step} ({}): {message}", call.tool)),
            ctx.now_ms,
        );
    }
    let last_straw = !budget::rejections_left(&state);
    charge(&mut state, &Usage { rejections: 1, ..usage });
    let events = record(&mut state, call, StepOutcome::Rejected, code, &message, usage, ctx);
    if last_straw {
        let max = state.budget.unwrap_or_default().max_rejections;
        let why = reason(
            "max_rejections",
            format!("{} proposals rejected (the limit is {max}); the last at step {step}: {code}: {message}", max + 1),
        );
        return finish_after(state, events, RunStatus::Refused, why, ctx.now_ms, Next::Nothing);
    }
    let next = Next::Advance { step: state.next_step, attempt: 0 };
    Transition { state, events, next }
}

/// Records `call` as a draft instead of running it. A `drafts_for_review` run ends `succeeded`
/// with the draft as its result, stop reason `draft_ready`; an advisory model or agent run ends
/// the same way with stop reason `advice_ready` (it proposes, it never executes: asking its
/// planner again would only draft more); an advisory script goes on to its next step.
pub fn draft(
    mut state: RunState,
    call: &ToolCall,
    code: &str,
    message: String,
    usage: Usage,
    ctx: &StepContext,
) -> Transition {
    charge(&mut state, &usage);
    let events = record(&mut state, call, StepOutcome::Drafted, code, &message, usage, ctx);
    let step = state.next_step - 1;
    let ends = if code == crate::judge::code::AUTONOMY_DRAFTS_FOR_REVIEW {
        Some(reason("draft_ready", format!("step {step} ({}) drafted for review", call.tool)))
    } else if code == crate::judge::code::AUTONOMY_ADVISORY && !is_script(&state) {
        let message = format!(
            "step {step} ({}) drafted: an advisory run ends at its first proposed side effect, with the draft as its result",
            call.tool
        );
        Some(reason("advice_ready", message))
    } else {
        None
    };
    if let Some(why) = ends {
        let args: serde_json::Value = serde_json::from_str(&call.args_json).unwrap_or_default();
        state.result = json!({ "draft": { "tool": call.tool, "args": args } }).to_string();
        return finish_after(state, events, RunStatus::Succeeded, why, ctx.now_ms, Next::Nothing);
    }
    if is_script(&state) && state.next_step >= script_len(&state) {
        let why = reason("completed", "all steps completed (side effects drafted)");
        return finish_after(state, events, RunStatus::Succeeded, why, ctx.now_ms, Next::Nothing);
    }
    let next = Next::Advance { step: state.next_step, attempt: 0 };
    Transition { state, events, next }
}

/// The planner finished: the run succeeds with `result` (a model's final reply, an agent's
/// result). The stop reason says what the runtime actually did — tool calls made, proposals
/// rejected — beside whatever the result claims.
pub fn conclude(mut state: RunState, result: String, usage: Usage, ctx: &StepContext) -> Transition {
    charge(&mut state, &usage);
    state.result = result;
    let spent = state.usage.unwrap_or_default();
    let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let message = format!(
        "the planner finished the run after {}: {} made, {} rejected",
        plural(state.next_step, "step", "steps"),
        plural(spent.tool_calls, "tool call", "tool calls"),
        plural(spent.rejections, "proposal", "proposals"),
    );
    finish(state, RunStatus::Succeeded, reason("completed", message), ctx.now_ms)
}

/// What a planner proposed when its spend, or the call itself, went past a budget.
#[derive(Debug, Clone, Copy)]
pub enum Unrun<'a> {
    /// A tool call.
    Call(&'a ToolCall),
    /// A final answer (its text).
    Finish(&'a str),
}

/// A proposal went past a budget (its spend, or the tool-call budget): it is charged, recorded
/// as a rejected step whose reason code is the budget's (`max_tokens`, `max_cost`,
/// `max_tool_calls`) with its spend, and the run ends as `why` says without running it. A
/// script's calls are in its spec already: its run just ends.
pub fn over_budget(
    mut state: RunState,
    proposed: Unrun<'_>,
    text: String,
    usage: Usage,
    status: RunStatus,
    why: StopReason,
    ctx: &StepContext,
) -> Transition {
    if is_script(&state) {
        return finish(state, status, why, ctx.now_ms);
    }
    charge(&mut state, &usage);
    let (call, text) = match proposed {
        Unrun::Call(call) => (call.clone(), text),
        Unrun::Finish(answer) => (ToolCall::default(), answer.to_string()),
    };
    let events = record(&mut state, &call, StepOutcome::Rejected, &why.code, &why.message, usage, ctx);
    if let Some(last) = state.steps.last_mut() {
        last.model_text = text;
    }
    finish_after(state, events, status, why, ctx.now_ms, Next::Nothing)
}

/// Appends a step record of a call that did not run (rejected or drafted), and its event.
fn record(
    state: &mut RunState,
    call: &ToolCall,
    outcome: StepOutcome,
    code: &str,
    message: &str,
    usage: Usage,
    ctx: &StepContext,
) -> Vec<crate::v1::RunEvent> {
    let step = state.next_step;
    state.status = RunStatus::Running as i32;
    state.updated_at_ms = ctx.now_ms;
    state.steps.push(StepRecord {
        step,
        tool: call.tool.clone(),
        args_json: call.args_json.clone(),
        attempt: state.attempt,
        started_at_ms: ctx.started_at_ms,
        finished_at_ms: ctx.now_ms,
        worker: ctx.worker.clone(),
        outcome: outcome as i32,
        reason_code: code.to_string(),
        error: message.to_string(),
        usage: Some(usage),
        ..Default::default()
    });
    state.next_step += 1;
    state.attempt = 0;
    state.last_error.clear();
    let kind = if outcome == StepOutcome::Rejected { EventKind::ProposalRejected } else { EventKind::StepDrafted };
    let mut events = Vec::new();
    push(state, &mut events, kind, ctx.now_ms, |e| {
        e.step = step;
        e.tool = call.tool.clone();
        e.args_json = call.args_json.clone();
        e.reason_code = code.to_string();
        e.detail = message.to_string();
        e.usage = Some(usage);
        e.worker = ctx.worker.clone();
        e.fence = ctx.fence;
    });
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::catalog::Catalog;
    use crate::machine::{apply_outcome, Outcome};
    use crate::plan::{model_spec, script_spec};
    use crate::v1::{AutonomyLevel, Budget, EventKind};

    fn ctx() -> StepContext {
        StepContext { worker: "w".into(), fence: 3, started_at_ms: 10, now_ms: 20, retry_tiers_ms: Vec::new() }
    }

    fn model_run(max_rejections: u32) -> RunState {
        let mut spec = model_spec("m", "g", &["echo", "ledger"]);
        spec.budget = Some(Budget { max_rejections, ..Default::default() });
        admit("r", "t", "", spec, &Policy::for_tests(), &Catalog::builtins(), 0).unwrap()
    }

    fn call(tool: &str) -> ToolCall {
        ToolCall { tool: tool.into(), args_json: r#"{"n":1}"#.into() }
    }

    fn spent(tokens: u64) -> Usage {
        Usage { input_tokens: tokens, output_tokens: 1, cost_micros: 7, model_calls: 1, ..Default::default() }
    }

    #[test]
    fn an_accepted_proposal_is_pending_until_its_tool_completes() {
        let t = accept(model_run(0), &call("echo"), spent(100), "let me look".into(), &ctx());
        assert_eq!(t.next, Next::Execute);
        assert_eq!(t.events[0].kind(), EventKind::StepProposed);
        assert_eq!(t.events[0].args_json, r#"{"n":1}"#);
        let pending = t.state.pending.clone().unwrap();
        assert_eq!(pending.call.unwrap().tool, "echo");
        assert_eq!(t.state.usage.unwrap().input_tokens, 100);
        let done = apply_outcome(t.state, &call("echo"), Outcome::Completed { output_json: "{}".into() }, &ctx(), 0.0);
        assert!(done.state.pending.is_none());
        let rec = &done.state.steps[0];
        assert_eq!((rec.outcome(), rec.model_text.as_str()), (StepOutcome::Completed, "let me look"));
        let u = rec.usage.unwrap();
        assert_eq!((u.input_tokens, u.tool_calls), (100, 1));
        let total = done.state.usage.unwrap();
        assert_eq!((total.input_tokens, total.tool_calls, total.model_calls), (100, 1, 1));
        assert_eq!(done.events[0].seq, 2);
    }

    #[test]
    fn a_retryable_failure_keeps_the_committed_proposal() {
        let t = accept(model_run(0), &call("echo"), spent(5), String::new(), &ctx());
        let t = apply_outcome(t.state, &call("echo"), Outcome::retryable("503"), &ctx(), 0.0);
        assert!(matches!(t.next, Next::Retry { step: 0, attempt: 1, .. }));
        assert_eq!(t.state.pending.unwrap().call.unwrap(), call("echo"));
    }

    #[test]
    fn rejections_are_fed_back_until_the_budget_is_spent() {
        let mut s = model_run(2);
        for i in 0..2 {
            let t = reject(s, &call("echo"), "invalid_args", "bad n".into(), spent(1), &ctx());
            assert_eq!(t.next, Next::Advance { step: i + 1, attempt: 0 });
            assert_eq!(t.events[0].kind(), EventKind::ProposalRejected);
            assert_eq!(t.events[0].reason_code, "invalid_args");
            s = t.state;
        }
        assert_eq!(s.steps[1].outcome(), StepOutcome::Rejected);
        let t = reject(s, &call("echo"), "policy_denied", "no".into(), spent(1), &ctx());
        assert_eq!(t.state.status(), RunStatus::Refused);
        let why = t.state.stop_reason.unwrap();
        assert_eq!(why.code, "max_rejections");
        assert!(why.message.contains("3 proposals rejected (the limit is 2)"), "{}", why.message);
        assert_eq!(t.state.usage.unwrap().rejections, 3);
    }

    #[test]
    fn a_script_run_is_refused_at_once() {
        let s =
            admit("r", "t", "", script_spec(&[("echo", "{}")]), &Policy::default(), &Catalog::builtins(), 0).unwrap();
        let t = reject(s, &call("echo"), "policy_denied", "no".into(), Usage::default(), &ctx());
        assert_eq!(t.state.status(), RunStatus::Refused);
        assert_eq!(t.state.stop_reason.unwrap().code, "policy_denied");
    }

    #[test]
    fn drafts_end_a_planner_driven_advisory_or_review_run_and_a_script_goes_on() {
        let t = draft(model_run(0), &call("ledger"), "autonomy_advisory", "not run".into(), spent(1), &ctx());
        assert_eq!(t.next, Next::Nothing, "an advisory run proposes once, then stops");
        assert_eq!(t.state.status(), RunStatus::Succeeded);
        let why = t.state.stop_reason.clone().unwrap();
        assert_eq!(why.code, "advice_ready");
        assert!(why.message.contains("step 0 (ledger) drafted"), "{}", why.message);
        assert_eq!(t.state.result, r#"{"draft":{"args":{"n":1},"tool":"ledger"}}"#);
        let kinds: Vec<_> = t.events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, [EventKind::StepDrafted, EventKind::RunFinished]);
        assert_eq!(t.state.usage.unwrap().tool_calls, 0);
        let mut s = model_run(0);
        s.spec.as_mut().unwrap().autonomy = AutonomyLevel::DraftsForReview as i32;
        let t = draft(s, &call("ledger"), "autonomy_drafts_for_review", "for review".into(), spent(1), &ctx());
        assert_eq!(t.state.status(), RunStatus::Succeeded);
        assert_eq!(t.state.stop_reason.as_ref().unwrap().code, "draft_ready");
        assert_eq!(t.state.result, r#"{"draft":{"args":{"n":1},"tool":"ledger"}}"#);
        assert_eq!(t.events.last().unwrap().detail, t.state.result, "RUN_FINISHED carries the result");
        let script = script_spec(&[("ledger", "{}"), ("echo", "{}")]);
        let s = admit("r", "t", "", script, &Policy::default(), &Catalog::builtins(), 0).unwrap();
        let t = draft(s, &call("ledger"), "autonomy_advisory", "not run".into(), Usage::default(), &ctx());
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 }, "a script is a dry run to its end");
    }

    #[test]
    fn conclude_says_what_the_runtime_did() {
        let t = reject(model_run(0), &call("ledger"), "policy_cap", "too much".into(), spent(1), &ctx());
        let t = accept(t.state, &call("echo"), spent(1), String::new(), &ctx());
        let t = apply_outcome(t.state, &call("echo"), Outcome::Completed { output_json: "{}".into() }, &ctx(), 0.0);
        let t = conclude(t.state, "I refunded the customer".into(), spent(40), &ctx());
        assert_eq!(t.state.status(), RunStatus::Succeeded);
        assert_eq!(t.state.result, "I refunded the customer");
        let why = t.state.stop_reason.unwrap();
        assert_eq!(why.code, "completed");
        assert_eq!(why.message, "the planner finished the run after 2 steps: 1 tool call made, 1 proposal rejected");
        assert_eq!(t.events[0].usage.unwrap().input_tokens, 42, "RUN_FINISHED carries the spend");
    }

    #[test]
    fn an_over_budget_proposal_is_recorded_with_its_spend() {
        let why = reason("max_tokens", "token budget exhausted");
        let proposed = ToolCall { tool: "ledger".into(), args_json: r#"{"n":1}"#.into() };
        let t = over_budget(
            model_run(0),
            Unrun::Call(&proposed),
            "paying".into(),
            spent(9),
            RunStatus::BudgetExhausted,
            why.clone(),
            &ctx(),
        );
        assert_eq!(t.state.usage.unwrap().input_tokens, 9);
        assert_eq!(t.state.usage.unwrap().rejections, 0, "a budget stop is not a judged rejection");
        assert_eq!(t.state.status(), RunStatus::BudgetExhausted);
        assert_eq!(t.next, Next::Nothing);
        let rec = &t.state.steps[0];
        assert_eq!(
            (rec.outcome(), rec.reason_code.as_str(), rec.tool.as_str()),
            (StepOutcome::Rejected, "max_tokens", "ledger")
        );
        assert_eq!((rec.usage.unwrap().input_tokens, rec.model_text.as_str()), (9, "paying"));
        let kinds: Vec<_> = t.events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, [EventKind::ProposalRejected, EventKind::RunFinished]);
        assert_eq!(t.events[0].usage.unwrap().input_tokens, 9);
        let t = over_budget(
            model_run(0),
            Unrun::Finish("all done"),
            String::new(),
            spent(9),
            RunStatus::BudgetExhausted,
            why.clone(),
            &ctx(),
        );
        assert_eq!((t.state.steps[0].tool.as_str(), t.state.steps[0].model_text.as_str()), ("", "all done"));
        let script =
            admit("r", "t", "", script_spec(&[("echo", "{}")]), &Policy::default(), &Catalog::builtins(), 0).unwrap();
        let t = over_budget(
            script,
            Unrun::Finish(""),
            String::new(),
            Usage::default(),
            RunStatus::BudgetExhausted,
            why,
            &ctx(),
        );
        assert!(t.state.steps.is_empty(), "a script's calls are in its spec");
    }
}
