//! ReconcileRun: an operator says what happened to a call whose outcome was uncertain (a run
//! waiting with reason `needs_reconciliation`). Applied by compare-and-set, like a cancel.

use std::time::Duration;

use baton_core::reconcile::{self, Choice};
use baton_proto::v1::{ReconcileRunRequest, ReconcileRunResponse, Reconciliation};
use baton_service::control::resume_run;
use baton_telemetry::now_ms;
use tonic::Status;

use crate::approvals::actor_arg;
use crate::convert::{run_id_arg, store_error};
use crate::Gateway;

const ATTEMPTS: usize = 20;

/// Applies the operator's reconciliation of `req.run_id`, for `tenant`.
pub async fn reconcile(gw: &Gateway, tenant: &str, req: ReconcileRunRequest) -> Result<ReconcileRunResponse, Status> {
    run_id_arg(&req.run_id)?;
    let actor = actor_arg(&req.actor, &req.comment, "reconciles")?;
    let choice = match req.decision() {
        Reconciliation::Done => {
            let max = gw.config.worker.max_output_bytes;
            if req.output_json.len() > max {
                return Err(Status::invalid_argument(format!(
                    "output_json: is {} bytes, the limit is {max}",
                    req.output_json.len()
                )));
            }
            let output: serde_json::Value = serde_json::from_str(&req.output_json).map_err(|e| {
                Status::invalid_argument(format!("output_json: with DONE, the call's output as JSON is required: {e}"))
            })?;
            Choice::Done { output_json: output.to_string() }
        }
        Reconciliation::NotDone => Choice::NotDone,
        Reconciliation::Fail => Choice::Fail,
        Reconciliation::Unspecified => {
            return Err(Status::invalid_argument(
                "decision: must be RECONCILIATION_DONE, RECONCILIATION_NOT_DONE or RECONCILIATION_FAIL",
            ))
        }
    };
    let run_id = &req.run_id;
    for _ in 0..ATTEMPTS {
        let snapshot = match gw.store.read_for_update(run_id).await.map_err(store_error)? {
            Some(s) if s.state.tenant == tenant => s,
            _ => return Err(Status::not_found(format!("run {run_id} not found"))),
        };
        reconcile::check(&snapshot.state, req.step).map_err(|e| Status::failed_precondition(e.to_string()))?;
        let t = reconcile::resolve(snapshot.state.clone(), &choice, &actor, &req.comment, now_ms());
        let grace = gw.config.runs.dispatch_grace_ms;
        if !resume_run(&gw.store, &gw.producer, &snapshot, &t, grace, gw.config.runs.retention_ms(), &[])
            .await
            .map_err(store_error)?
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        metrics::counter!(crate::metric_definitions::RECONCILIATIONS, "decision" => choice.name()).increment(1);
        tracing::info!(run_id, tenant, actor, decision = choice.name(), step = req.step, "run reconciled");
        return Ok(ReconcileRunResponse { status: t.state.status });
    }
    Err(Status::aborted(format!("run {run_id} kept changing; try again")))
}
