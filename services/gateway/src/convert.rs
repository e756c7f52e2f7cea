//! Mapping internal records to API messages and errors to gRPC statuses, and checking the
//! arguments every RPC shares (run ids, who acts).

use baton_proto::v1::Run;
use baton_store::RunView;
use tonic::Status;

/// The client's view of a run: its checkpoint, step count and latest steps.
pub fn run_of(view: RunView) -> Run {
    let RunView { state, steps_total, latest } = view;
    Run {
        steps_completed: steps_total as u32,
        run_id: state.run_id,
        tenant: state.tenant,
        status: state.status,
        spec: state.spec,
        steps: latest,
        created_at_ms: state.created_at_ms,
        updated_at_ms: state.updated_at_ms,
        deadline_at_ms: state.deadline_at_ms,
        stop_reason: state.stop_reason,
        lane: state.lane,
        budget: state.budget,
        attempt: state.attempt,
        last_error: state.last_error,
        wake_at_ms: state.wake_at_ms,
        usage: state.usage,
        result: state.result,
        pending: state.pending,
        wait_reason: state.wait_reason,
    }
}

/// A store failure as UNAVAILABLE (the caller may retry) or INTERNAL (corrupt data).
pub fn store_error(e: baton_store::Error) -> Status {
    match e {
        baton_store::Error::Corrupt { .. } => {
            tracing::error!(error = %e, "corrupt record");
            Status::internal(e.to_string())
        }
        baton_store::Error::NewerSchema { .. } => Status::failed_precondition(e.to_string()),
        other => Status::unavailable(format!("state store unavailable: {other}")),
    }
}

/// Checks a run id argument: non-empty, bounded, no key-breaking characters.
pub fn run_id_arg(run_id: &str) -> Result<(), Status> {
    if run_id.is_empty() {
        return Err(Status::invalid_argument("run_id: is required"));
    }
    if run_id.len() > 128 || !run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Status::invalid_argument(format!("run_id: {run_id:?} is not a run id")));
    }
    Ok(())
}

/// Longest actor name accepted.
pub const MAX_ACTOR: usize = 256;
/// Longest comment accepted.
pub const MAX_COMMENT: usize = 4096;

/// Checks who acts and why: a non-empty, bounded actor and a bounded comment.
pub fn actor_arg(actor: &str, comment: &str, what: &str) -> Result<String, Status> {
    let actor = actor.trim();
    if actor.is_empty() {
        return Err(Status::invalid_argument(format!("actor: is required (who {what}; it is recorded)")));
    }
    if actor.len() > MAX_ACTOR || actor.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "actor: must be at most {MAX_ACTOR} characters without control characters"
        )));
    }
    if comment.len() > MAX_COMMENT {
        return Err(Status::invalid_argument(format!(
            "comment: is {} bytes, the limit is {MAX_COMMENT}",
            comment.len()
        )));
    }
    Ok(actor.to_string())
}
