//! Human-readable text for each API message: one line per event or listed run.

use std::fmt::Write as _;

use baton_proto::v1::{
    planner, Approval, ApprovalDecision, CancelRunResponse, EventKind, ListRunsResponse, ListStepsResponse, Run,
    RunEvent, StepOutcome, StepRecord, StopReason, SubmitRunResponse, Usage,
};

use crate::format::{kind_name, one_line, outcome_name, status_name, timestamp};

/// `<run id>`, followed by `deduplicated status=<status>` when the key named an existing run.
pub fn submitted(resp: &SubmitRunResponse) -> String {
    if resp.deduplicated {
        format!("{} deduplicated status={}", resp.run_id, status_name(resp.status))
    } else {
        resp.run_id.clone()
    }
}

/// `seq=3 step_completed step=1 tool=echo key=<run>:1 status=running detail=...`
pub fn event(e: &RunEvent) -> String {
    let mut line = format!("seq={} {}", e.seq, kind_name(e.kind));
    let kind = EventKind::try_from(e.kind);
    if matches!(kind, Ok(EventKind::StepCompleted | EventKind::StepFailed | EventKind::RunReconciled)) {
        let _ = write!(line, " step={} tool={} key={}", e.step, e.tool, e.idempotency_key);
        if e.attempt > 0 {
            let _ = write!(line, " attempt={}", e.attempt);
        }
    }
    if matches!(
        kind,
        Ok(EventKind::StepProposed
            | EventKind::ProposalRejected
            | EventKind::StepDrafted
            | EventKind::ApprovalRequested
            | EventKind::ApprovalResolved
            | EventKind::NeedsReconciliation)
    ) {
        let _ = write!(line, " step={} tool={} args={}", e.step, e.tool, one_line(&e.args_json));
    }
    if !e.approval_id.is_empty() {
        let _ = write!(line, " approval={} action_hash={}", e.approval_id, e.action_hash);
    }
    if !e.actor.is_empty() {
        let _ = write!(line, " actor={}", e.actor);
    }
    if kind == Ok(EventKind::NeedsReconciliation) {
        let _ = write!(line, " key={}", e.idempotency_key);
    }
    if !e.reason_code.is_empty() {
        let _ = write!(line, " reason={}", e.reason_code);
    }
    if let Some(u) = e.usage.as_ref().filter(|u| u.model_calls > 0) {
        let _ = write!(line, " {}", usage_text(u));
    }
    let _ = write!(line, " status={}", status_name(e.status));
    if e.not_before_ms > 0 {
        let _ = write!(line, " not_before={}", timestamp(e.not_before_ms));
    }
    if let Some(stop) = &e.stop_reason {
        let _ = write!(line, " stop={}", stop_text(stop));
    }
    if !e.detail.is_empty() {
        let _ = write!(line, " detail={}", one_line(&e.detail));
    }
    line
}

/// A multi-line description of one run and its committed steps.
pub fn run(r: &Run) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:<10} {value}");
    };
    field("run", &r.run_id);
    field("tenant", &r.tenant);
    field("status", &status_name(r.status));
    if let Some(stop) = &r.stop_reason {
        field("stop", &stop_text(stop));
    }
    field("lane", &r.lane);
    if let Some(spec) = &r.spec {
        if !spec.goal.is_empty() {
            field("goal", &one_line(&spec.goal));
        }
        match spec.planner.as_ref().and_then(|p| p.kind.as_ref()) {
            Some(planner::Kind::Script(script)) => {
                let tools: Vec<&str> = script.steps.iter().map(|c| c.tool.as_str()).collect();
                field("plan", &format!("script, {} steps: {}", tools.len(), tools.join(" ")));
            }
            Some(planner::Kind::Model(m)) => field("planner", &format!("model {}", m.endpoint)),
            Some(planner::Kind::Grpc(a)) => field("planner", &format!("agent {}", a.agent)),
            None => {}
        }
        if !spec.allowed_tools.is_empty() {
            field("tools", &spec.allowed_tools.join(" "));
        }
    }
    if !r.result.is_empty() {
        field("result", &one_line(&r.result));
    }
    if let Some(u) = &r.usage {
        field("spend", &usage_text(u));
    }
    if !r.wait_reason.is_empty() {
        field("waiting", &r.wait_reason);
    }
    if let Some(p) = r.pending.as_ref() {
        if let Some(call) = p.call.as_ref() {
            field(
                "pending",
                &format!("tool={} args={} (committed, not yet executed)", call.tool, one_line(&call.args_json)),
            );
        }
        if let Some(a) = &p.approval {
            field("approval", &approval_text(a));
        }
        if p.started_at_ms > 0 {
            field("started", &format!("{} by {} (outcome unknown)", timestamp(p.started_at_ms), p.started_by));
        }
    }
    if r.wake_at_ms > 0 {
        field("wakes", &timestamp(r.wake_at_ms));
    }
    if r.attempt > 0 {
        field("attempt", &format!("{} (of the next step)", r.attempt));
    }
    if !r.last_error.is_empty() {
        field("last_error", &one_line(&r.last_error));
    }
    field("created", &timestamp(r.created_at_ms));
    field("updated", &timestamp(r.updated_at_ms));
    field("deadline", &timestamp(r.deadline_at_ms));
    if let Some(b) = &r.budget {
        field(
            "budget",
            &format!(
                "max_steps={} max_wall_clock_ms={} max_tokens={} max_cost_micros={} max_tool_calls={} max_rejections={}",
                b.max_steps, b.max_wall_clock_ms, b.max_tokens, b.max_cost_micros, b.max_tool_calls, b.max_rejections
            ),
        );
    }
    let shown = if (r.steps.len() as u32) < r.steps_completed {
        format!(
            "{} recorded, the latest {} below (`batonctl steps {}` pages through all)",
            r.steps_completed,
            r.steps.len(),
            r.run_id
        )
    } else {
        format!("{} recorded", r.steps_completed)
    };
    field("steps", &shown);
    for step in &r.steps {
        let _ = writeln!(out, "  {}", step_line(step));
    }
    out.trim_end().to_string()
}

/// `step=0 completed tool=echo key=<run>:0 attempt=0 worker=w-1 output=...`; a rejected or
/// drafted proposal shows its arguments and reason code instead of a key and output.
fn step_line(s: &StepRecord) -> String {
    let outcome = StepOutcome::try_from(s.outcome).unwrap_or_default();
    if matches!(outcome, StepOutcome::Rejected | StepOutcome::Drafted) {
        let mut line = format!(
            "step={} {} tool={} args={} reason={}",
            s.step,
            outcome_name(s.outcome),
            s.tool,
            one_line(&s.args_json),
            s.reason_code
        );
        if let Some(u) = s.usage.as_ref().filter(|u| u.model_calls > 0) {
            let _ = write!(line, " {}", usage_text(u));
        }
        let _ = write!(line, " detail={}", one_line(&s.error));
        return line;
    }
    let mut line = format!(
        "step={} {} tool={} key={} attempt={}",
        s.step,
        outcome_name(s.outcome),
        s.tool,
        s.idempotency_key,
        s.attempt
    );
    if !s.model_text.is_empty() || outcome == StepOutcome::Failed || s.usage.is_some_and(|u| u.model_calls > 0) {
        let _ = write!(line, " args={}", one_line(&s.args_json));
    }
    if let Some(u) = s.usage.as_ref().filter(|u| u.model_calls > 0) {
        let _ = write!(line, " {}", usage_text(u));
    }
    if !s.worker.is_empty() {
        let _ = write!(line, " worker={}", s.worker);
    }
    if let Some(a) = s.approval.as_ref().filter(|a| !a.actor.is_empty()) {
        let _ = write!(line, " approved_by={}", a.actor);
    }
    if !s.reconciled_by.is_empty() {
        let _ = write!(line, " reconciled_by={}", s.reconciled_by);
    }
    if s.finished_at_ms > 0 && s.started_at_ms > 0 {
        let _ = write!(line, " took_ms={}", s.finished_at_ms - s.started_at_ms);
    }
    if outcome == StepOutcome::Failed {
        let _ = write!(line, " error={}", one_line(&s.error));
    } else {
        let _ = write!(line, " output={}", one_line(&s.output_json));
    }
    line
}

/// `id=<id> action_hash=<hash> required_by=<why> pending|approved|denied [by <actor>] expires=<t>`
pub fn approval_text(a: &Approval) -> String {
    let mut text = format!("id={} action_hash={} required_by={}", a.approval_id, a.action_hash, a.required_by);
    match a.decision() {
        ApprovalDecision::Unspecified => {
            text.push_str(" pending");
            if a.expires_at_ms > 0 {
                let _ = write!(text, " expires={}", timestamp(a.expires_at_ms));
            }
            if a.escalations > 0 {
                let _ = write!(text, " escalations={}", a.escalations);
            }
        }
        d => {
            let word = if d == ApprovalDecision::Approve { "approved" } else { "denied" };
            let _ = write!(text, " {word} by {} at {}", a.actor, timestamp(a.decided_at_ms));
            if !a.comment.is_empty() {
                let _ = write!(text, " comment={}", one_line(&a.comment));
            }
        }
    }
    text
}

/// `tokens=<in>+<out> cost_micros=<c>` plus tool calls and rejections when there are any.
fn usage_text(u: &Usage) -> String {
    let mut text = format!("tokens={}+{} cost_micros={}", u.input_tokens, u.output_tokens, u.cost_micros);
    if u.model_calls > 1 || u.tool_calls > 0 || u.rejections > 0 {
        let _ = write!(text, " model_calls={} tool_calls={} rejections={}", u.model_calls, u.tool_calls, u.rejections);
    }
    text
}

/// One line per step, then `next_page_token=<token>` when more pages exist (unless `all`).
pub fn step_page(page: &ListStepsResponse, all: bool) -> String {
    let mut out: Vec<String> = page.steps.iter().map(step_line).collect();
    if !all && !page.next_page_token.is_empty() {
        out.push(format!("next_page_token={} total={}", page.next_page_token, page.total));
    }
    out.join("\n")
}

/// One line per run, then `next_page_token=<token>` when more pages exist.
pub fn run_list(page: &ListRunsResponse) -> String {
    let mut out = String::new();
    for r in &page.runs {
        let _ = write!(
            out,
            "{} {} steps={} lane={} created={}",
            r.run_id,
            status_name(r.status),
            r.steps_completed,
            r.lane,
            timestamp(r.created_at_ms)
        );
        if let Some(stop) = &r.stop_reason {
            let _ = write!(out, " stop={}", stop.code);
        }
        out.push('\n');
    }
    if !page.next_page_token.is_empty() {
        let _ = writeln!(out, "next_page_token={}", page.next_page_token);
    }
    out.trim_end().to_string()
}

/// `<run id> status=<status after the cancel request>`
pub fn cancelled(run_id: &str, resp: &CancelRunResponse) -> String {
    format!("{run_id} status={}", status_name(resp.status))
}

/// `code`, `code: message`, then ` (by <who>)` when someone other than the run stopped it.
fn stop_text(stop: &StopReason) -> String {
    let mut text = stop.code.clone();
    if !stop.message.is_empty() {
        let _ = write!(text, ": {}", one_line(&stop.message));
    }
    if !stop.by.is_empty() {
        let _ = write!(text, " (by {})", stop.by);
    }
    text
}

#[cfg(test)]
mod tests {
    use baton_proto::v1::RunStatus;

    use super::*;

    #[test]
    fn step_event_line() {
        let e = RunEvent {
            run_id: "r1".into(),
            seq: 3,
            kind: EventKind::StepCompleted as i32,
            status: RunStatus::Running as i32,
            step: 1,
            tool: "echo".into(),
            idempotency_key: "r1:1".into(),
            detail: "{\"msg\":\"hi\"}".into(),
            ..Default::default()
        };
        assert_eq!(event(&e), r#"seq=3 step_completed step=1 tool=echo key=r1:1 status=running detail={"msg":"hi"}"#);
    }

    #[test]
    fn finished_event_line() {
        let e = RunEvent {
            seq: 5,
            kind: EventKind::RunFinished as i32,
            status: RunStatus::Succeeded as i32,
            stop_reason: Some(StopReason { code: "completed".into(), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(event(&e), "seq=5 run_finished status=succeeded stop=completed");
    }

    #[test]
    fn retry_time_and_stopper_are_shown() {
        let e = RunEvent {
            seq: 4,
            kind: EventKind::StepFailed as i32,
            status: RunStatus::Running as i32,
            step: 2,
            attempt: 1,
            tool: "echo".into(),
            idempotency_key: "r1:2".into(),
            not_before_ms: 1_700_000_000_000,
            detail: "boom".into(),
            ..Default::default()
        };
        assert_eq!(
            event(&e),
            "seq=4 step_failed step=2 tool=echo key=r1:2 attempt=1 status=running \
             not_before=2023-11-14T22:13:20.000Z detail=boom"
        );
        let stop =
            StopReason { code: "cancelled".into(), message: "operator request".into(), by: "tenant:acme".into() };
        assert_eq!(stop_text(&stop), "cancelled: operator request (by tenant:acme)");
    }
}
