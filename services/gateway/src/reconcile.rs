//! ReconcileRun: an operator says what happened to a call whose outcome was uncertain (a run
//! waiting with reason `needs_reconciliation`). Applied by compare-and-set ([`change_run`]).

use baton_core::reconcile::{self, Choice};
use baton_proto::v1::{ReconcileRunRequest, ReconcileRunResponse, Reconciliation};
use baton_telemetry::now_ms;
use tonic::Status;

use crate::change::change_run;
use crate::convert::{actor_arg, run_id_arg};
use crate::Gateway;

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
    let (t, _) = change_run(gw, tenant, run_id, |state| {
        reconcile::check(state, req.step).map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(reconcile::resolve(state.clone(), &choice, &actor, &req.comment, now_ms()))
    })
    .await?;
    metrics::counter!(crate::metric_definitions::RECONCILIATIONS, "decision" => choice.name()).increment(1);
    tracing::info!(run_id, tenant, actor, decision = choice.name(), step = req.step, "run reconciled");
    Ok(ReconcileRunResponse { status: t.state.status })
}
