//! Approvals bound to the exact action. A call that needs a person's approval is committed as
//! the run's pending call with an [`Approval`] carrying the hash of (tool, canonical JSON
//! arguments, run, step); the run waits. Approving must quote that hash and the approval id, and
//! runs exactly that committed call; a new proposal gets a new id and hash, so an old approval
//! can never approve it. Denial is told to the planner (or ends the run); expiry denies or
//! escalates, per [`ApprovalPolicy`].

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::events::push;
use crate::machine::{finish_after, reason, Next, StepContext, Transition};
use crate::plan::is_script;
use crate::proposal::charge;
use crate::v1::{
    Approval, ApprovalDecision, EventKind, PendingCall, RunState, RunStatus, StepOutcome, StepRecord, ToolCall, Usage,
};

/// The `wait_reason` of a run waiting for an approval.
pub const WAIT_REASON: &str = "approval";
/// The actor recorded when a request expires.
pub const EXPIRED_ACTOR: &str = "baton:expired";

/// Why a call needs approval (recorded as `Approval.required_by`).
pub mod required_by {
    /// The run's autonomy level is `executes_after_approval` and the tool has a side effect.
    pub const AUTONOMY: &str = "autonomy";
    /// The tool manifest marks the tool `requires_approval`.
    pub const TOOL: &str = "tool";
    /// An operator switch requires approval for the tool.
    pub const OPERATOR: &str = "operator";
}

/// What happens to a denied call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeny {
    /// The planner is told and proposes again (a script run still ends `refused`).
    FeedBack,
    /// The run ends `refused`.
    EndRun,
}

/// What happens to a request nobody answered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExpiry {
    /// It is denied (actor `baton:expired`).
    Deny,
    /// It waits another `ttl_ms`, `max_escalations` times, then is denied.
    Escalate,
}

/// The fleet's approval settings (`[approvals]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// How long a request waits (0: forever).
    pub ttl_ms: u64,
    /// What expiry does.
    pub on_expiry: OnExpiry,
    /// How many times a request is escalated before it is denied.
    pub max_escalations: u32,
    /// What denial does.
    pub on_deny: OnDeny,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self { ttl_ms: 86_400_000, on_expiry: OnExpiry::Deny, max_escalations: 0, on_deny: OnDeny::FeedBack }
    }
}

/// Why a resolution was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The run does not wait for an approval.
    #[error("run {run_id} is not waiting for an approval (status {status})")]
    NotWaiting {
        /// The run.
        run_id: String,
        /// Its status ([`crate::status::describe`]).
        status: String,
    },
    /// The approval id is not the one the run waits on (decided, expired, or superseded).
    #[error("approval {given} is stale: run {run_id} waits on approval {current}")]
    Stale {
        /// The run.
        run_id: String,
        /// The id quoted.
        given: String,
        /// The id the run waits on.
        current: String,
    },
    /// The hash quoted is not the hash of the pending action.
    #[error("action hash {given} does not match the pending action ({current}): the call changed; look at it again")]
    HashMismatch {
        /// The hash quoted.
        given: String,
        /// The pending action's hash.
        current: String,
    },
}

/// JSON text with object keys sorted at every level and no insignificant whitespace: two
/// argument objects that mean the same hash the same.
pub fn canonical_json(value: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// The hash an approval is bound to: hex SHA-256 of the canonical JSON of
/// `{"args": …, "run": …, "step": …, "tool": …}`. Arguments that are not JSON hash as a string.
pub fn action_hash(run_id: &str, step: u32, call: &ToolCall) -> String {
    let args = serde_json::from_str(&call.args_json).unwrap_or_else(|_| Value::String(call.args_json.clone()));
    let action = serde_json::json!({ "args": args, "run": run_id, "step": step, "tool": call.tool });
    Sha256::digest(canonical_json(&action).as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Commits `call` as the pending call of step `state.next_step` and makes the run wait for a
/// person's approval of exactly it. `Next::Wait` until the expiry (`Next::Hold` without one).
pub fn request(
    mut state: RunState,
    call: &ToolCall,
    usage: Usage,
    text: String,
    required: &str,
    policy: &ApprovalPolicy,
    ctx: &StepContext,
) -> Transition {
    let (step, attempt) = (state.next_step, state.attempt);
    if !is_script(&state) {
        charge(&mut state, &usage);
    }
    let hash = action_hash(&state.run_id, step, call);
    let id_source = format!("{hash}:{}:{}", state.event_seq, ctx.now_ms);
    let approval_id: String = Sha256::digest(id_source.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
    let expires_at_ms = if policy.ttl_ms == 0 { 0 } else { ctx.now_ms + policy.ttl_ms as i64 };
    let approval = Approval {
        approval_id: approval_id.clone(),
        action_hash: hash.clone(),
        required_by: required.to_string(),
        requested_at_ms: ctx.now_ms,
        expires_at_ms,
        ..Default::default()
    };
    state.pending = Some(PendingCall {
        call: Some(call.clone()),
        usage: Some(usage),
        model_text: text.clone(),
        proposed_at_ms: ctx.now_ms,
        approval: Some(approval),
        ..Default::default()
    });
    state.status = RunStatus::Waiting as i32;
    state.wait_reason = WAIT_REASON.into();
    state.wake_at_ms = expires_at_ms;
    state.updated_at_ms = ctx.now_ms;
    let mut events = Vec::new();
    push(&mut state, &mut events, EventKind::ApprovalRequested, ctx.now_ms, |e| {
        e.step = step;
        e.attempt = attempt;
        e.tool = call.tool.clone();
        e.args_json = call.args_json.clone();
        e.approval_id = approval_id;
        e.action_hash = hash;
        e.reason_code = required.to_string();
        e.detail = text;
        e.usage = Some(usage);
        e.not_before_ms = expires_at_ms;
        e.worker = ctx.worker.clone();
        e.fence = ctx.fence;
    });
    let next = if expires_at_ms == 0 { Next::Hold } else { Next::Wait { wake_at_ms: expires_at_ms } };
    Transition { state, events, next }
}

/// The approval the run waits on, if it waits for one.
pub fn waiting_on(state: &RunState) -> Option<&Approval> {
    if state.status() != RunStatus::Waiting || state.wait_reason != WAIT_REASON {
        return None;
    }
    state.pending.as_ref()?.approval.as_ref().filter(|a| a.decision() == ApprovalDecision::Unspecified)
}

/// Whether a listing of the run among those waiting for approval can go: the run is gone or
/// ended. A run not (yet) waiting keeps its listing: the worker lists a request just before it
/// commits it, and answering or expiring a request drops the listing itself.
pub fn listing_is_stale(state: Option<&RunState>) -> bool {
    state.is_none_or(|s| crate::status::is_terminal(s.status()))
}

/// Checks that `approval_id` and `action_hash` name the approval the run waits on now.
pub fn check(state: &RunState, approval_id: &str, action_hash: &str) -> Result<(), ResolveError> {
    let Some(current) = waiting_on(state) else {
        let status = crate::status::describe(state);
        return Err(ResolveError::NotWaiting { run_id: state.run_id.clone(), status });
    };
    if current.approval_id != approval_id {
        return Err(ResolveError::Stale {
            run_id: state.run_id.clone(),
            given: approval_id.to_string(),
            current: current.approval_id.clone(),
        });
    }
    if current.action_hash != action_hash {
        return Err(ResolveError::HashMismatch {
            given: action_hash.to_string(),
            current: current.action_hash.clone(),
        });
    }
    Ok(())
}

/// Checks, before a pending call runs, that any approval it needed was given for exactly it.
pub fn verify(state: &RunState, call: &ToolCall) -> Result<(), String> {
    let Some(approval) = state.pending.as_ref().and_then(|p| p.approval.as_ref()) else { return Ok(()) };
    if approval.decision() != ApprovalDecision::Approve {
        return Err(format!("approval {} was not given", approval.approval_id));
    }
    let hash = action_hash(&state.run_id, state.next_step, call);
    if hash != approval.action_hash {
        return Err(format!("approval {} is for action {}, not {hash}", approval.approval_id, approval.action_hash));
    }
    Ok(())
}

/// Approves the pending call (after [`check`]): the run is runnable again and its next task
/// runs exactly that call.
pub fn approve(mut state: RunState, actor: &str, comment: &str, now_ms: i64) -> Transition {
    let (approval, call) = decide(&mut state, ApprovalDecision::Approve, actor, comment, now_ms);
    let (step, attempt) = (state.next_step, state.attempt);
    let mut events = Vec::new();
    resolved_event(&mut state, &mut events, &approval, step, &call, "approved");
    Transition { state, events, next: Next::Advance { step, attempt } }
}

/// Denies the pending call (after [`check`], or on expiry): the call is recorded as rejected
/// with reason `approval_denied`; the planner is told, or the run ends `refused` (a script run,
/// or `on_deny = end_run`).
pub fn deny(mut state: RunState, actor: &str, comment: &str, policy: &ApprovalPolicy, now_ms: i64) -> Transition {
    let (approval, call) = decide(&mut state, ApprovalDecision::Deny, actor, comment, now_ms);
    let pending = state.pending.take().unwrap_or_default();
    let step = state.next_step;
    let why = if comment.is_empty() { String::new() } else { format!(": {comment}") };
    let message = if actor == EXPIRED_ACTOR {
        format!("not executed: the approval request for {:?} expired unanswered", call.tool)
    } else {
        format!("not executed: {actor} denied the call of {:?}{why}", call.tool)
    };
    state.steps.push(StepRecord {
        step,
        tool: call.tool.clone(),
        args_json: call.args_json.clone(),
        attempt: state.attempt,
        started_at_ms: pending.proposed_at_ms,
        finished_at_ms: now_ms,
        outcome: StepOutcome::Rejected as i32,
        reason_code: "approval_denied".into(),
        error: message.clone(),
        usage: pending.usage,
        model_text: pending.model_text,
        approval: Some(approval.clone()),
        ..Default::default()
    });
    state.next_step += 1;
    state.attempt = 0;
    state.last_error.clear();
    let mut events = Vec::new();
    resolved_event(&mut state, &mut events, &approval, step, &call, &message);
    if is_script(&state) || policy.on_deny == OnDeny::EndRun {
        let mut stop = reason("approval_denied", format!("step {step} ({}): {message}", call.tool));
        stop.by = actor.to_string();
        return finish_after(state, events, RunStatus::Refused, stop, now_ms, Next::Nothing);
    }
    let next = Next::Advance { step: state.next_step, attempt: 0 };
    Transition { state, events, next }
}

/// The request expired unanswered: escalated (another `ttl_ms`) while escalations are left,
/// else denied by `baton:expired`.
pub fn expire(mut state: RunState, policy: &ApprovalPolicy, now_ms: i64) -> Transition {
    let escalations = waiting_on(&state).map_or(0, |a| a.escalations);
    if policy.on_expiry == OnExpiry::Escalate && escalations < policy.max_escalations && policy.ttl_ms > 0 {
        let expires_at_ms = now_ms + policy.ttl_ms as i64;
        let approval = state.pending.as_mut().and_then(|p| p.approval.as_mut()).expect("waiting on an approval");
        approval.escalations += 1;
        approval.expires_at_ms = expires_at_ms;
        let approval = approval.clone();
        state.wake_at_ms = expires_at_ms;
        state.updated_at_ms = now_ms;
        let step = state.next_step;
        let mut events = Vec::new();
        push(&mut state, &mut events, EventKind::ApprovalEscalated, now_ms, |e| {
            e.step = step;
            e.approval_id = approval.approval_id.clone();
            e.action_hash = approval.action_hash.clone();
            e.not_before_ms = expires_at_ms;
            e.detail = format!("escalation {} of {}", approval.escalations, policy.max_escalations);
        });
        return Transition { state, events, next: Next::Wait { wake_at_ms: expires_at_ms } };
    }
    deny(state, EXPIRED_ACTOR, "", policy, now_ms)
}

/// Records the decision on the pending approval and ends the wait; the decided approval and
/// the call it is for.
fn decide(
    state: &mut RunState,
    decision: ApprovalDecision,
    actor: &str,
    comment: &str,
    now_ms: i64,
) -> (Approval, ToolCall) {
    let pending = state.pending.as_mut().expect("waiting on an approval");
    let approval = pending.approval.as_mut().expect("waiting on an approval");
    approval.decision = decision as i32;
    approval.actor = actor.to_string();
    approval.comment = comment.to_string();
    approval.decided_at_ms = now_ms;
    let decided = (approval.clone(), pending.call.clone().unwrap_or_default());
    state.status = RunStatus::Running as i32;
    state.wait_reason.clear();
    state.wake_at_ms = 0;
    state.updated_at_ms = now_ms;
    decided
}

/// APPROVAL_RESOLVED for the decision `a` on `call` at `step`.
fn resolved_event(
    state: &mut RunState,
    events: &mut Vec<crate::v1::RunEvent>,
    a: &Approval,
    step: u32,
    call: &ToolCall,
    detail: &str,
) {
    push(state, events, EventKind::ApprovalResolved, a.decided_at_ms, |e| {
        e.step = step;
        e.tool = call.tool.clone();
        e.args_json = call.args_json.clone();
        e.approval_id = a.approval_id.clone();
        e.action_hash = a.action_hash.clone();
        e.actor = a.actor.clone();
        e.reason_code = if a.decision() == ApprovalDecision::Approve { "approved" } else { "approval_denied" }.into();
        e.detail = detail.to_string();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::catalog::Catalog;
    use crate::plan::{model_spec, script_spec};

    fn ctx(now_ms: i64) -> StepContext {
        StepContext { worker: "w".into(), fence: 2, started_at_ms: now_ms, now_ms, retry_tiers_ms: Vec::new() }
    }

    fn model_run() -> RunState {
        admit(
            "r1",
            "acme",
            "",
            model_spec("m", "g", &["echo", "ledger"]),
            &Policy::for_tests(),
            &Catalog::builtins(),
            0,
        )
        .unwrap()
    }

    fn call(args: &str) -> ToolCall {
        ToolCall { tool: "ledger".into(), args_json: args.into() }
    }

    fn policy() -> ApprovalPolicy {
        ApprovalPolicy { ttl_ms: 1_000, ..Default::default() }
    }

    fn waiting(state: RunState, args: &str) -> Transition {
        request(
            state,
            &call(args),
            Usage { input_tokens: 5, ..Default::default() },
            "pay".into(),
            "autonomy",
            &policy(),
            &ctx(100),
        )
    }

    #[test]
    fn the_hash_binds_tool_canonical_arguments_run_and_step() {
        let a = action_hash("r1", 0, &call(r#"{"b":1,"a":{"y":2,"x":[1,{"q":0,"p":1}]}}"#));
        let same = action_hash("r1", 0, &call(r#"{ "a": {"x":[1,{"p":1,"q":0}],"y":2}, "b":1 }"#));
        assert_eq!(a, same);
        assert_eq!(a.len(), 64);
        assert_ne!(a, action_hash("r1", 1, &call(r#"{"b":1,"a":{"y":2,"x":[1,{"q":0,"p":1}]}}"#)));
        assert_ne!(a, action_hash("r2", 0, &call(r#"{"b":1,"a":{"y":2,"x":[1,{"q":0,"p":1}]}}"#)));
        assert_ne!(a, action_hash("r1", 0, &call(r#"{"b":2,"a":{"y":2,"x":[1,{"q":0,"p":1}]}}"#)));
        assert_eq!(canonical_json(&serde_json::json!({"b":"\"","a":null})), r#"{"a":null,"b":"\""}"#);
    }

    #[test]
    fn a_request_waits_and_only_its_own_id_and_hash_resolve_it() {
        let t = waiting(model_run(), r#"{"amount":5}"#);
        assert_eq!((t.state.status(), t.state.wait_reason.as_str()), (RunStatus::Waiting, WAIT_REASON));
        assert_eq!(t.next, Next::Wait { wake_at_ms: 1_100 });
        let e = &t.events[0];
        assert_eq!(e.kind(), EventKind::ApprovalRequested);
        let a = waiting_on(&t.state).unwrap().clone();
        assert_eq!((e.approval_id.as_str(), e.action_hash.as_str()), (a.approval_id.as_str(), a.action_hash.as_str()));
        assert_eq!(t.state.usage.unwrap().input_tokens, 5, "the proposal's spend is charged once");
        assert!(matches!(check(&t.state, "nope", &a.action_hash), Err(ResolveError::Stale { .. })));
        assert!(matches!(check(&t.state, &a.approval_id, "beef"), Err(ResolveError::HashMismatch { .. })));
        assert_eq!(check(&t.state, &a.approval_id, &a.action_hash), Ok(()));
        let err = check(&model_run(), "x", "y").unwrap_err();
        assert!(err.to_string().contains("is not waiting for an approval (status queued)"), "{err}");
    }

    #[test]
    fn approval_runs_exactly_the_committed_call() {
        let t = waiting(model_run(), r#"{"amount":5}"#);
        let t = approve(t.state, "alice", "ok", 200);
        assert_eq!(t.next, Next::Advance { step: 0, attempt: 0 });
        assert_eq!(t.state.status(), RunStatus::Running);
        assert_eq!(t.events[0].kind(), EventKind::ApprovalResolved);
        assert_eq!((t.events[0].actor.as_str(), t.events[0].reason_code.as_str()), ("alice", "approved"));
        assert_eq!(verify(&t.state, &call(r#"{"amount":5}"#)), Ok(()));
        assert!(verify(&t.state, &call(r#"{"amount":6}"#)).unwrap_err().contains("is for action"));
        assert!(check(&t.state, "x", "y").is_err(), "an approved request cannot be resolved twice");
        let unapproved = waiting(model_run(), "{}").state;
        assert!(verify(&unapproved, &call("{}")).is_err());
    }

    #[test]
    fn denial_is_fed_back_or_ends_the_run() {
        let t = deny(waiting(model_run(), "{}").state, "bob", "too much", &policy(), 300);
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
        let rec = &t.state.steps[0];
        assert_eq!((rec.outcome(), rec.reason_code.as_str()), (StepOutcome::Rejected, "approval_denied"));
        assert!(rec.error.contains("bob denied") && rec.error.contains("too much"), "{}", rec.error);
        assert_eq!(rec.approval.as_ref().unwrap().actor, "bob");
        assert!(t.state.pending.is_none());
        let end = ApprovalPolicy { on_deny: OnDeny::EndRun, ..policy() };
        let t = deny(waiting(model_run(), "{}").state, "bob", "", &end, 300);
        assert_eq!(t.state.status(), RunStatus::Refused);
        assert_eq!(t.state.stop_reason.as_ref().unwrap().by, "bob");
        let script =
            admit("s", "t", "", script_spec(&[("ledger", "{}")]), &Policy::default(), &Catalog::builtins(), 0).unwrap();
        let t = deny(waiting(script, "{}").state, "bob", "", &policy(), 300);
        assert_eq!(t.state.status(), RunStatus::Refused);
        assert_eq!(t.state.stop_reason.unwrap().code, "approval_denied");
    }

    #[test]
    fn expiry_escalates_then_denies() {
        let escalate = ApprovalPolicy { on_expiry: OnExpiry::Escalate, max_escalations: 1, ..policy() };
        let t = expire(waiting(model_run(), "{}").state, &escalate, 1_100);
        assert_eq!(t.next, Next::Wait { wake_at_ms: 2_100 });
        assert_eq!(t.events[0].kind(), EventKind::ApprovalEscalated);
        assert_eq!(waiting_on(&t.state).unwrap().escalations, 1);
        let t = expire(t.state, &escalate, 2_100);
        assert_eq!(t.state.steps[0].approval.as_ref().unwrap().actor, EXPIRED_ACTOR);
        assert!(t.state.steps[0].error.contains("expired"));
        let t = expire(waiting(model_run(), "{}").state, &policy(), 1_100);
        assert_eq!(t.events[0].reason_code, "approval_denied");
    }
}
