//! Human-readable text for each API message: one line per event or listed run.

use std::fmt::Write as _;

use baton_proto::v1::{
    planner, CancelRunResponse, EventKind, ListRunsResponse, Run, RunEvent, StepRecord, StopReason, SubmitRunResponse,
};

use crate::output::{kind_name, one_line, status_name, timestamp};

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
    let is_step = matches!(EventKind::try_from(e.kind), Ok(EventKind::StepCompleted | EventKind::StepFailed));
    if is_step {
        let _ = write!(line, " step={} tool={} key={}", e.step, e.tool, e.idempotency_key);
        if e.attempt > 0 {
            let _ = write!(line, " attempt={}", e.attempt);
        }
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
        if let Some(planner::Kind::Script(script)) = spec.planner.as_ref().and_then(|p| p.kind.as_ref()) {
            let tools: Vec<&str> = script.steps.iter().map(|c| c.tool.as_str()).collect();
            field("plan", &format!("script, {} steps: {}", tools.len(), tools.join(" ")));
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
        field("budget", &format!("max_steps={} max_wall_clock_ms={}", b.max_steps, b.max_wall_clock_ms));
    }
    field("steps", &format!("{} completed", r.steps_completed));
    for step in &r.steps {
        let _ = writeln!(out, "  {}", step_line(step));
    }
    out.trim_end().to_string()
}

/// `step=0 tool=echo key=<run>:0 attempt=0 worker=w-1 output=...`
fn step_line(s: &StepRecord) -> String {
    let mut line = format!("step={} tool={} key={} attempt={}", s.step, s.tool, s.idempotency_key, s.attempt);
    if !s.worker.is_empty() {
        let _ = write!(line, " worker={}", s.worker);
    }
    if s.finished_at_ms > 0 && s.started_at_ms > 0 {
        let _ = write!(line, " took_ms={}", s.finished_at_ms - s.started_at_ms);
    }
    let _ = write!(line, " output={}", one_line(&s.output_json));
    line
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
