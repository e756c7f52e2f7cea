//! CancelRun: a queued or waiting run is cancelled at once by compare-and-set; a run whose
//! step is in flight gets a stop request that its worker's heartbeat picks up, cancelling the
//! tool call and committing `cancelled`. A finished run is a FAILED_PRECONDITION.

use std::time::Duration;

use baton_core::status::{is_terminal, name};
use baton_core::stop::StopRequest;
use baton_proto::v1::{CancelRunResponse, RunStatus};
use baton_service::control::Stopped;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

const ATTEMPTS: usize = 20;

/// Cancels `run_id` for `tenant`, recording who asked and why.
pub async fn cancel(gw: &Gateway, tenant: &str, run_id: &str, reason: &str) -> Result<CancelRunResponse, Status> {
    let request = StopRequest {
        status: RunStatus::Cancelled,
        code: "cancelled".into(),
        by: format!("tenant:{tenant}"),
        message: if reason.is_empty() { "cancelled by request".into() } else { reason.to_string() },
    };
    for _ in 0..ATTEMPTS {
        let snapshot = match gw.store.read_for_update(run_id).await.map_err(store_error)? {
            Some(s) if s.state.tenant == tenant => s,
            _ => return Err(Status::not_found(format!("run {run_id} not found"))),
        };
        let status = snapshot.state.status();
        if is_terminal(status) {
            return Err(Status::failed_precondition(format!("run {run_id} already ended {}", name(status))));
        }
        match gw.control.stop(&snapshot, &request).await.map_err(store_error)? {
            Stopped::Requested => {
                metrics::counter!(crate::metric_definitions::CANCELS, "path" => "in_flight").increment(1);
                return Ok(CancelRunResponse { status: RunStatus::Running as i32 });
            }
            Stopped::Ended(_) => {
                metrics::counter!(crate::metric_definitions::CANCELS, "path" => name(status).to_string()).increment(1);
                tracing::info!(run_id, tenant, "run cancelled");
                return Ok(CancelRunResponse { status: RunStatus::Cancelled as i32 });
            }
            // A worker claimed it, or it changed: read again.
            Stopped::Changed => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    Err(Status::aborted(format!("run {run_id} kept changing; try the cancel again")))
}
