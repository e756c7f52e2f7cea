//! `baton.v1.AdminService`: list, requeue and discard dead letters; list and reload tools;
//! operator switches (in [`crate::switches`]).

use std::sync::Arc;
use std::time::Duration;

use baton_core::machine::requeue;
use baton_proto::v1::admin_service_server::AdminService;
use baton_proto::v1::{
    CheckReadinessRequest, CheckReadinessResponse, DiscardDeadLetterRequest, DiscardDeadLetterResponse,
    ListDeadLettersRequest, ListDeadLettersResponse, ListLanesRequest, ListLanesResponse, ListSwitchesRequest,
    ListSwitchesResponse, ListToolsRequest, ListToolsResponse, ReloadToolsRequest, ReloadToolsResponse,
    RequeueDeadLetterRequest, RequeueDeadLetterResponse, RunStatus, SetLaneSwitchRequest, SetLaneWeightsRequest,
    SetLimitRequest, SetTenantCapRequest, SetToolSwitchRequest, SwitchChange,
};
use baton_store::{keys, Index};
use baton_telemetry::now_ms;
use tonic::{Request, Response, Status};

use crate::convert::{run_id_arg, store_error};
use crate::{readiness, switches, Gateway};

/// The AdminService implementation.
pub struct Admin(pub Arc<Gateway>);

#[tonic::async_trait]
impl AdminService for Admin {
    #[tracing::instrument(skip_all)]
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let req = request.into_inner();
        let limit = match req.limit {
            0 => 100,
            n if n > 10_000 => return Err(Status::invalid_argument(format!("limit: {n} is above 10000"))),
            n => n as usize,
        };
        let tenant = (!req.tenant.is_empty()).then_some(req.tenant.as_str());
        let after = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        let page = self.0.store.dead_letters(tenant, limit, after).await.map_err(store_error)?;
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: page.letters,
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn requeue_dead_letter(
        &self,
        request: Request<RequeueDeadLetterRequest>,
    ) -> Result<Response<RequeueDeadLetterResponse>, Status> {
        let run_id = request.into_inner().run_id;
        run_id_arg(&run_id)?;
        let gw = &self.0;
        let Some((letter, _)) = gw.store.dead_letter_get(&run_id).await.map_err(store_error)? else {
            return Err(Status::not_found(format!("no dead letter for run {run_id}")));
        };
        for _ in 0..20 {
            let Some(snapshot) = gw.store.read_for_update(&run_id).await.map_err(store_error)? else {
                return Err(Status::not_found(format!("run {run_id} expired")));
            };
            if snapshot.state.status() != RunStatus::DeadLettered {
                return Err(Status::failed_precondition(format!("run {run_id} is not dead-lettered")));
            }
            let t = requeue(snapshot.state.clone(), "admin", now_ms());
            let deadline = [(Index::Deadlines, t.state.deadline_at_ms)];
            // The update takes the letter away with the status; its listing goes after.
            if gw.control.resume(&snapshot, &t, &deadline).await.map_err(store_error)?.is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            if let Err(e) = gw.store.dead_letter_unlist(&run_id, letter.dead_at_ms).await {
                tracing::warn!(run_id, error = %e, "cannot unlist the requeued letter (listings re-check)");
            }
            // Running again: counted against its tenant's and lane's caps again.
            let sets = [keys::active_runs(&t.state.tenant), keys::lane_active_runs(&t.state.lane)];
            if let Err(e) = gw.store.active_admit(&sets, &run_id, now_ms()).await {
                tracing::warn!(run_id, error = %e, "cannot list the requeued run as active");
            }
            tracing::info!(run_id, step = t.state.next_step, "dead letter requeued");
            return Ok(Response::new(RequeueDeadLetterResponse { status: RunStatus::Running as i32 }));
        }
        Err(Status::aborted(format!("run {run_id} kept changing; try again")))
    }

    #[tracing::instrument(skip_all)]
    async fn discard_dead_letter(
        &self,
        request: Request<DiscardDeadLetterRequest>,
    ) -> Result<Response<DiscardDeadLetterResponse>, Status> {
        let run_id = request.into_inner().run_id;
        run_id_arg(&run_id)?;
        if !self.0.store.dead_letter_remove(&run_id).await.map_err(store_error)? {
            return Err(Status::not_found(format!("no dead letter for run {run_id}")));
        }
        tracing::info!(run_id, "dead letter discarded");
        Ok(Response::new(DiscardDeadLetterResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn list_tools(&self, _request: Request<ListToolsRequest>) -> Result<Response<ListToolsResponse>, Status> {
        let tools = &self.0.tools;
        let loaded = tools.snapshot();
        Ok(Response::new(ListToolsResponse {
            tools: switches::tools_with_state(&self.0).await?,
            manifest_path: tools.path(),
            manifest_version: loaded.catalog.version().to_string(),
            loaded_at_ms: loaded.loaded_at_ms,
            last_error: loaded.last_error,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reload_tools(
        &self,
        _request: Request<ReloadToolsRequest>,
    ) -> Result<Response<ReloadToolsResponse>, Status> {
        let gw = &self.0;
        if gw.tools.path().is_empty() {
            return Err(Status::failed_precondition("no tool manifest is configured (tools.manifest)"));
        }
        let changed =
            gw.tools.reload(&gw.store, &format!("{} (AdminService/ReloadTools)", gw.id)).await.map_err(|reason| {
                Status::invalid_argument(format!("tool manifest rejected, the previous one stays in force: {reason}"))
            })?;
        // Every other service re-reads its manifest on this signal.
        gw.store.tools_reload_signal().await.map_err(store_error)?;
        let catalog = gw.tools.catalog();
        Ok(Response::new(ReloadToolsResponse {
            manifest_version: catalog.version().to_string(),
            tools: catalog.tools().count() as u32,
            changed,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn set_tool_switch(&self, request: Request<SetToolSwitchRequest>) -> Result<Response<SwitchChange>, Status> {
        switches::set_tool(&self.0, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn set_lane_switch(&self, request: Request<SetLaneSwitchRequest>) -> Result<Response<SwitchChange>, Status> {
        switches::set_lane(&self.0, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn set_tenant_cap(&self, request: Request<SetTenantCapRequest>) -> Result<Response<SwitchChange>, Status> {
        switches::set_tenant_cap(&self.0, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn set_limit(&self, request: Request<SetLimitRequest>) -> Result<Response<SwitchChange>, Status> {
        switches::set_limit(&self.0, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn list_lanes(&self, request: Request<ListLanesRequest>) -> Result<Response<ListLanesResponse>, Status> {
        let req = request.into_inner();
        crate::lanes::list(&self.0, &req.tenant, &req.agent).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn set_lane_weights(
        &self,
        request: Request<SetLaneWeightsRequest>,
    ) -> Result<Response<ListLanesResponse>, Status> {
        crate::lanes::set_weights(&self.0, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn list_switches(
        &self,
        request: Request<ListSwitchesRequest>,
    ) -> Result<Response<ListSwitchesResponse>, Status> {
        switches::list(&self.0, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn check_readiness(
        &self,
        _request: Request<CheckReadinessRequest>,
    ) -> Result<Response<CheckReadinessResponse>, Status> {
        readiness::check(&self.0).await.map(Response::new)
    }
}
