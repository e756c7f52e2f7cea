//! `baton.v1.RunService` handlers: thin, each validating its arguments and delegating.

use std::sync::Arc;

use baton_proto::v1::run_service_server::RunService;
use baton_proto::v1::{
    CancelRunRequest, CancelRunResponse, GetRunRequest, ListApprovalsRequest, ListApprovalsResponse, ListRunsRequest,
    ListRunsResponse, ListStepsRequest, ListStepsResponse, ReconcileRunRequest, ReconcileRunResponse,
    ResolveApprovalRequest, ResolveApprovalResponse, Run, RunStatus, SubmitRunRequest, SubmitRunResponse,
    WatchRunRequest,
};
use tonic::{Request, Response, Status};

use crate::convert::{run_id_arg, run_of, store_error};
use crate::{approvals, cancel, reconcile, submit, tenant, watch, Gateway};

/// The RunService implementation.
pub struct Api(pub Arc<Gateway>);

impl Api {
    /// The tenant's run `run_id` with its latest `latest` steps; a foreign run is NOT_FOUND.
    async fn view_owned(&self, tenant: &str, run_id: &str, latest: usize) -> Result<baton_store::RunView, Status> {
        run_id_arg(run_id)?;
        match self.0.store.run_view(run_id, latest).await.map_err(store_error)? {
            Some(view) if view.state.tenant == tenant => Ok(view),
            _ => Err(Status::not_found(format!("run {run_id} not found"))),
        }
    }

    /// A page size: 0 means `default`, more than `gateway.max_page_size` is refused.
    fn page_size(&self, asked: u32, default: u32) -> Result<u32, Status> {
        let max = self.0.config.gateway.max_page_size;
        match asked {
            0 => Ok(default.min(max)),
            n if n > max => Err(Status::invalid_argument(format!("page_size: {n} is above the limit {max}"))),
            n => Ok(n),
        }
    }
}

#[tonic::async_trait]
impl RunService for Api {
    #[tracing::instrument(skip_all)]
    async fn submit_run(&self, request: Request<SubmitRunRequest>) -> Result<Response<SubmitRunResponse>, Status> {
        let tenant = tenant::of(&request)?;
        submit::submit(&self.0, &tenant, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn get_run(&self, request: Request<GetRunRequest>) -> Result<Response<Run>, Status> {
        let tenant = tenant::of(&request)?;
        let req = request.get_ref();
        let latest = match req.latest_steps {
            0 => self.0.config.gateway.run_latest_steps,
            n => n.min(self.0.config.gateway.max_page_size),
        };
        let view = self.view_owned(&tenant, &req.run_id, latest as usize).await?;
        Ok(Response::new(run_of(view)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_steps(&self, request: Request<ListStepsRequest>) -> Result<Response<ListStepsResponse>, Status> {
        let tenant = tenant::of(&request)?;
        let req = request.into_inner();
        let page_size = self.page_size(req.page_size, 100)?;
        let start = match req.page_token.as_str() {
            "" => 0,
            t => t
                .parse::<u64>()
                .map_err(|_| Status::invalid_argument("page_token: not a token returned by ListSteps"))?,
        };
        self.view_owned(&tenant, &req.run_id, 0).await?;
        let (steps, total) =
            self.0.store.steps_page(&req.run_id, start, page_size as usize).await.map_err(store_error)?;
        let next = start + steps.len() as u64;
        let next_page_token = if next < total { next.to_string() } else { String::new() };
        Ok(Response::new(ListStepsResponse { steps, next_page_token, total }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_runs(&self, request: Request<ListRunsRequest>) -> Result<Response<ListRunsResponse>, Status> {
        let tenant = tenant::of(&request)?;
        let req = request.into_inner();
        let page_size = self.page_size(req.page_size, 50)?;
        let only = match RunStatus::try_from(req.status) {
            Ok(RunStatus::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => return Err(Status::invalid_argument(format!("status: {} is not a RunStatus", req.status))),
        };
        let token = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        if let Some(t) = token {
            let valid = t.split_once(':').is_some_and(|(s, id)| s.parse::<i64>().is_ok() && run_id_arg(id).is_ok());
            if !valid {
                return Err(Status::invalid_argument("page_token: not a token returned by ListRuns"));
            }
        }
        let page = self.0.store.list_runs(&tenant, only, page_size as usize, token).await.map_err(store_error)?;
        Ok(Response::new(ListRunsResponse {
            // Listing is a summary: steps are left out (GetRun and ListSteps have them).
            runs: page.runs.into_iter().map(run_of).collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    type WatchRunStream = watch::EventStream;

    #[tracing::instrument(skip_all)]
    async fn watch_run(&self, request: Request<WatchRunRequest>) -> Result<Response<Self::WatchRunStream>, Status> {
        let tenant = tenant::of(&request)?;
        let req = request.into_inner();
        self.view_owned(&tenant, &req.run_id, 0).await?;
        let permit = self.0.watchers.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!("too many watchers (limit {})", self.0.config.gateway.max_watchers))
        })?;
        Ok(Response::new(watch::watch(self.0.clone(), req.run_id, req.after_seq, permit)))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_run(&self, request: Request<CancelRunRequest>) -> Result<Response<CancelRunResponse>, Status> {
        let tenant = tenant::of(&request)?;
        let req = request.into_inner();
        run_id_arg(&req.run_id)?;
        if req.reason.len() > 1024 {
            return Err(Status::invalid_argument("reason: at most 1024 bytes"));
        }
        cancel::cancel(&self.0, &tenant, &req.run_id, &req.reason).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_approval(
        &self,
        request: Request<ResolveApprovalRequest>,
    ) -> Result<Response<ResolveApprovalResponse>, Status> {
        let tenant = tenant::of(&request)?;
        approvals::resolve(&self.0, &tenant, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn list_approvals(
        &self,
        request: Request<ListApprovalsRequest>,
    ) -> Result<Response<ListApprovalsResponse>, Status> {
        let tenant = tenant::of(&request)?;
        approvals::list(&self.0, &tenant, request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn reconcile_run(
        &self,
        request: Request<ReconcileRunRequest>,
    ) -> Result<Response<ReconcileRunResponse>, Status> {
        let tenant = tenant::of(&request)?;
        reconcile::reconcile(&self.0, &tenant, request.into_inner()).await.map(Response::new)
    }
}
