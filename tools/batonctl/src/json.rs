//! JSON for each API message, built by hand (prost types do not implement `Serialize`).
//!
//! Field names follow the proto field names; enums are the short lowercase names batonctl prints
//! (`succeeded`, `step_completed`); `*_json` fields stay strings exactly as the API returned them.

use baton_proto::v1::{
    planner, Approval, ApprovalDecision, AutonomyLevel, Budget, CancelRunResponse, ListRunsResponse, ListStepsResponse,
    PendingCall, RetryPolicy, Run, RunEvent, RunSpec, StepRecord, StopReason, SubmitRunResponse, ToolCall, Usage,
};
use serde_json::{json, Value};

use crate::format::{kind_name, outcome_name, status_name};

/// `{"run_id", "deduplicated", "status"}`
pub fn submitted(resp: &SubmitRunResponse) -> Value {
    json!({ "run_id": resp.run_id, "deduplicated": resp.deduplicated, "status": status_name(resp.status) })
}

/// One RunEvent.
pub fn event(e: &RunEvent) -> Value {
    json!({
        "run_id": e.run_id,
        "seq": e.seq,
        "kind": kind_name(e.kind),
        "at_ms": e.at_ms,
        "status": status_name(e.status),
        "step": e.step,
        "attempt": e.attempt,
        "tool": e.tool,
        "idempotency_key": e.idempotency_key,
        "detail": e.detail,
        "stop_reason": e.stop_reason.as_ref().map(stop_reason),
        "worker": e.worker,
        "fence": e.fence,
        "tenant": e.tenant,
        "not_before_ms": e.not_before_ms,
        "reason_code": e.reason_code,
        "args_json": e.args_json,
        "usage": e.usage.as_ref().map(usage),
        "actor": e.actor,
        "approval_id": e.approval_id,
        "action_hash": e.action_hash,
    })
}

/// One Run, with its spec and committed steps.
pub fn run(r: &Run) -> Value {
    json!({
        "run_id": r.run_id,
        "tenant": r.tenant,
        "status": status_name(r.status),
        "stop_reason": r.stop_reason.as_ref().map(stop_reason),
        "lane": r.lane,
        "spec": r.spec.as_ref().map(spec),
        "steps_completed": r.steps_completed,
        "steps": r.steps.iter().map(step).collect::<Vec<_>>(),
        "created_at_ms": r.created_at_ms,
        "updated_at_ms": r.updated_at_ms,
        "deadline_at_ms": r.deadline_at_ms,
        "budget": r.budget.as_ref().map(budget),
        "attempt": r.attempt,
        "last_error": r.last_error,
        "wake_at_ms": r.wake_at_ms,
        "usage": r.usage.as_ref().map(usage),
        "result": r.result,
        "pending": r.pending.as_ref().map(pending),
        "wait_reason": r.wait_reason,
    })
}

/// One page of ListRuns: `{"runs": [...], "next_page_token"}`.
pub fn run_list(page: &ListRunsResponse) -> Value {
    json!({
        "runs": page.runs.iter().map(run).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    })
}

/// One page of ListSteps: `{"steps": [...], "next_page_token", "total"}`.
pub fn step_page(page: &ListStepsResponse) -> Value {
    json!({
        "steps": page.steps.iter().map(step).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
        "total": page.total,
    })
}

/// `{"run_id", "status"}` after a CancelRun.
pub fn cancelled(run_id: &str, resp: &CancelRunResponse) -> Value {
    json!({ "run_id": run_id, "status": status_name(resp.status) })
}

fn spec(s: &RunSpec) -> Value {
    let planner = match s.planner.as_ref().and_then(|p| p.kind.as_ref()) {
        Some(planner::Kind::Script(script)) => {
            json!({ "script": { "steps": script.steps.iter().map(tool_call).collect::<Vec<_>>() } })
        }
        Some(planner::Kind::Model(m)) => json!({ "model": {
            "endpoint": m.endpoint, "system_prompt": m.system_prompt, "temperature": m.temperature,
        } }),
        Some(planner::Kind::Grpc(a)) => json!({ "grpc": { "agent": a.agent } }),
        None => Value::Null,
    };
    json!({
        "goal": s.goal,
        "planner": planner,
        "allowed_tools": s.allowed_tools,
        "autonomy": autonomy_name(s.autonomy),
        "budget": s.budget.as_ref().map(budget),
        "retry": s.retry.as_ref().map(retry),
        "lane": s.lane,
        "labels": s.labels,
    })
}

fn autonomy_name(raw: i32) -> String {
    match AutonomyLevel::try_from(raw) {
        Ok(a) => a.as_str_name().trim_start_matches("AUTONOMY_LEVEL_").to_ascii_lowercase(),
        Err(_) => format!("autonomy({raw})"),
    }
}

pub fn tool_call(c: &ToolCall) -> Value {
    json!({ "tool": c.tool, "args_json": c.args_json })
}

fn step(s: &StepRecord) -> Value {
    json!({
        "step": s.step,
        "tool": s.tool,
        "args_json": s.args_json,
        "output_json": s.output_json,
        "idempotency_key": s.idempotency_key,
        "attempt": s.attempt,
        "started_at_ms": s.started_at_ms,
        "finished_at_ms": s.finished_at_ms,
        "worker": s.worker,
        "outcome": outcome_name(s.outcome),
        "reason_code": s.reason_code,
        "error": s.error,
        "usage": s.usage.as_ref().map(usage),
        "model_text": s.model_text,
        "approval": s.approval.as_ref().map(approval),
        "reconciled_by": s.reconciled_by,
    })
}

/// One Approval: the action hash it is bound to, and the decision once made.
pub fn approval(a: &Approval) -> Value {
    let decision = match a.decision() {
        ApprovalDecision::Approve => "approved",
        ApprovalDecision::Deny => "denied",
        ApprovalDecision::Unspecified => "pending",
    };
    json!({
        "approval_id": a.approval_id,
        "action_hash": a.action_hash,
        "required_by": a.required_by,
        "requested_at_ms": a.requested_at_ms,
        "expires_at_ms": a.expires_at_ms,
        "escalations": a.escalations,
        "decision": decision,
        "actor": a.actor,
        "comment": a.comment,
        "decided_at_ms": a.decided_at_ms,
    })
}

fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cost_micros": u.cost_micros,
        "model_calls": u.model_calls,
        "tool_calls": u.tool_calls,
        "rejections": u.rejections,
    })
}

fn pending(p: &PendingCall) -> Value {
    json!({
        "call": p.call.as_ref().map(tool_call),
        "usage": p.usage.as_ref().map(usage),
        "model_text": p.model_text,
        "proposed_at_ms": p.proposed_at_ms,
        "approval": p.approval.as_ref().map(approval),
        "started_at_ms": p.started_at_ms,
        "started_by": p.started_by,
    })
}

fn budget(b: &Budget) -> Value {
    json!({
        "max_steps": b.max_steps,
        "max_wall_clock_ms": b.max_wall_clock_ms,
        "max_tokens": b.max_tokens,
        "max_cost_micros": b.max_cost_micros,
        "max_tool_calls": b.max_tool_calls,
        "max_rejections": b.max_rejections,
    })
}

fn retry(r: &RetryPolicy) -> Value {
    json!({
        "max_attempts": r.max_attempts,
        "initial_backoff_ms": r.initial_backoff_ms,
        "max_backoff_ms": r.max_backoff_ms,
    })
}

fn stop_reason(s: &StopReason) -> Value {
    json!({ "code": s.code, "message": s.message, "by": s.by })
}

#[cfg(test)]
mod tests {
    use baton_proto::v1::{EventKind, RunStatus};

    use super::*;

    #[test]
    fn event_is_one_json_line() {
        let e = RunEvent {
            run_id: "r1".into(),
            seq: 4,
            kind: EventKind::RunFinished as i32,
            status: RunStatus::Failed as i32,
            detail: "line1\nline2".into(),
            stop_reason: Some(StopReason { code: "tool_error".into(), message: "boom".into(), ..Default::default() }),
            ..Default::default()
        };
        let text = event(&e).to_string();
        assert!(!text.contains('\n'));
        let back: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back["kind"], "run_finished");
        assert_eq!(back["status"], "failed");
        assert_eq!(back["stop_reason"]["code"], "tool_error");
        assert_eq!(back["detail"], "line1\nline2");
    }
}
