//! ResolveApproval and ListApprovals. A resolution must quote the approval id and the action
//! hash the run shows; it is applied by compare-and-set on the run's fence ([`change_run`]), so it races safely
//! with the scheduler expiring the same request: exactly one wins, the other sees a run no
//! longer waiting and is refused with nothing written. Each decision is also an entry of the
//! fleet's audit log (`approval.approved` / `approval.denied`, by whom, on which run).

use baton_core::approval;
use baton_proto::v1::{
    ApprovalDecision, ListApprovalsRequest, ListApprovalsResponse, PendingApproval, ResolveApprovalRequest,
    ResolveApprovalResponse,
};
use baton_store::{AuditEntry, Index};
use baton_telemetry::now_ms;
use tonic::Status;

use crate::change::change_run;
use crate::convert::{actor_arg, run_id_arg, store_error};
use crate::Gateway;

/// Approves or denies the call `req.run_id` waits on, for `tenant`.
pub async fn resolve(
    gw: &Gateway,
    tenant: &str,
    req: ResolveApprovalRequest,
) -> Result<ResolveApprovalResponse, Status> {
    run_id_arg(&req.run_id)?;
    let actor = actor_arg(&req.actor, &req.comment, "decides")?;
    let decision = match req.decision() {
        ApprovalDecision::Approve | ApprovalDecision::Deny => req.decision(),
        ApprovalDecision::Unspecified => {
            return Err(Status::invalid_argument(
                "decision: must be APPROVAL_DECISION_APPROVE or APPROVAL_DECISION_DENY",
            ))
        }
    };
    if req.approval_id.is_empty() || req.action_hash.is_empty() {
        return Err(Status::invalid_argument(
            "approval_id and action_hash: are required (as GetRun or ListApprovals show them)",
        ));
    }
    let run_id = &req.run_id;
    let policy = gw.config.approvals.policy();
    let (t, before) = change_run(gw, tenant, run_id, |state| {
        approval::check(state, &req.approval_id, &req.action_hash).map_err(|e| {
            metrics::counter!(crate::metric_definitions::APPROVALS, "result" => "refused").increment(1);
            Status::failed_precondition(e.to_string())
        })?;
        Ok(match decision {
            ApprovalDecision::Approve => approval::approve(state.clone(), &actor, &req.comment, now_ms()),
            _ => approval::deny(state.clone(), &actor, &req.comment, &policy, now_ms()),
        })
    })
    .await?;
    // The request is answered: its expiry timer (unless a newer timer replaced it) and listing
    // go (hints; readers re-check).
    let cleanup = async {
        gw.store.index_clear(Index::Timers, run_id, before.wake_at_ms).await?;
        gw.store.approvals_drop(tenant, run_id).await
    };
    if let Err(e) = cleanup.await {
        tracing::warn!(run_id, error = %e, "cannot clear the answered request's indexes (readers re-check)");
    }
    let label = if decision == ApprovalDecision::Approve { "approved" } else { "denied" };
    metrics::counter!(crate::metric_definitions::APPROVALS, "result" => label).increment(1);
    tracing::info!(run_id, tenant, actor, decision = label, "approval resolved");
    // A person overrode the runtime: the fleet's audit log records it beside switch changes.
    let audit = AuditEntry {
        at_ms: now_ms(),
        actor: actor.clone(),
        action: format!("approval.{label}"),
        outcome: baton_core::status::name(t.state.status()).to_string(),
        detail: format!("run {run_id} (tenant {tenant}), approval {}: {}", req.approval_id, req.comment),
    };
    if let Err(e) = gw.store.audit(&audit).await {
        tracing::warn!(run_id, error = %e, "cannot write the audit entry of an approval decision (the decision stands)");
    }
    let decided = t
        .state
        .pending
        .as_ref()
        .and_then(|p| p.approval.clone())
        .or_else(|| t.state.steps.last().and_then(|r| r.approval.clone()));
    Ok(ResolveApprovalResponse { status: t.state.status, approval: decided })
}

/// A page of `tenant`'s runs waiting for an approval, oldest request first. The page token is
/// the last entry looked at (`<requested at ms>:<run id>`), so approvals resolved between pages
/// shift nothing: the next page starts after it.
pub async fn list(gw: &Gateway, tenant: &str, req: ListApprovalsRequest) -> Result<ListApprovalsResponse, Status> {
    let max = gw.config.gateway.max_page_size;
    let limit = match req.limit {
        0 => 100.min(max),
        n if n > max => return Err(Status::invalid_argument(format!("limit: {n} is above the limit {max}"))),
        n => n,
    } as usize;
    let mut cursor = match req.page_token.as_str() {
        "" => None,
        token => Some(page_cursor(token)?),
    };
    let mut approvals = Vec::new();
    // Entries of ended runs are dropped, of runs not waiting now skipped; reading a little past
    // the limit keeps a page full when a few are.
    let chunk = limit + 16;
    loop {
        let after = cursor.as_ref().map(|(at, id): &(i64, String)| (*at, id.as_str()));
        let entries = gw.store.approvals_list(tenant, after, chunk).await.map_err(store_error)?;
        let exhausted = entries.len() < chunk;
        for (run_id, at) in entries {
            if approvals.len() == limit {
                let next_page_token = cursor.map(|(at, id)| format!("{at}:{id}")).unwrap_or_default();
                return Ok(ListApprovalsResponse { approvals, next_page_token });
            }
            cursor = Some((at, run_id.clone()));
            let state = gw.store.load_run(&run_id).await.map_err(store_error)?;
            if approval::listing_is_stale(state.as_ref()) {
                gw.store.approvals_drop(tenant, &run_id).await.map_err(store_error)?;
                continue;
            }
            let Some(state) = state else { continue };
            let Some(waiting) = approval::waiting_on(&state).cloned() else { continue };
            approvals.push(PendingApproval {
                run_id,
                step: state.next_step,
                call: state.pending.as_ref().and_then(|p| p.call.clone()),
                approval: Some(waiting),
                goal: state.spec.as_ref().map(|s| s.goal.clone()).unwrap_or_default(),
            });
        }
        if exhausted {
            return Ok(ListApprovalsResponse { approvals, next_page_token: String::new() });
        }
    }
}

/// The cursor a ListApprovals page token carries: the request time and run id of the last entry
/// the previous page looked at.
fn page_cursor(token: &str) -> Result<(i64, String), Status> {
    let bad = || Status::invalid_argument("page_token: not a token returned by ListApprovals");
    let (at, run_id) = token.split_once(':').ok_or_else(bad)?;
    let at = at.parse::<i64>().map_err(|_| bad())?;
    run_id_arg(run_id).map_err(|_| bad())?;
    Ok((at, run_id.to_string()))
}
