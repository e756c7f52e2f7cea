//! SubmitRun: validate at the edge, answer a retry with the run its idempotency key already
//! names (before admission: a client retrying an admitted submit gets its run even when its
//! tenant is now over a limit), route to a lane and stamp its versions ([`crate::lanes`]), apply
//! admission control ([`crate::admission`]), reserve the idempotency key, write the first
//! checkpoint, then dispatch the first task. The in-flight entry written first, and kept until a worker
//! claims the run, makes a crash or a lost task anywhere after the checkpoint recoverable by
//! the reaper.

use baton_core::admission::{admit, fingerprint, validate};
use baton_core::events::push;
use baton_proto::v1::{EventKind, RunStatus, SubmitRunRequest, SubmitRunResponse};
use baton_store::{Index, Reservation};
use baton_telemetry::now_ms;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

const MAX_IDEMPOTENCY_KEY: usize = 256;

/// Admits a run for `tenant`, or returns the run its idempotency key already names.
pub async fn submit(gw: &Gateway, tenant: &str, req: SubmitRunRequest) -> Result<SubmitRunResponse, Status> {
    let mut spec = req.spec.ok_or_else(|| Status::invalid_argument("spec: is required"))?;
    let key = req.idempotency_key;
    if key.len() > MAX_IDEMPOTENCY_KEY || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Status::invalid_argument(format!(
            "idempotency_key: must be at most {MAX_IDEMPOTENCY_KEY} characters without spaces"
        )));
    }
    let policy = gw.config.admission_policy();
    let catalog = gw.tools.catalog();
    validate(&spec, &policy, &catalog).map_err(|e| Status::invalid_argument(e.to_string()))?;
    // The fingerprint is of the spec as the client sent it: a retry routed elsewhere is the same run.
    let print = fingerprint(&spec);
    if !key.is_empty() {
        if let Some(reserved) = gw.store.idempotency_lookup(tenant, &key).await.map_err(store_error)? {
            if let Some(answer) = deduplicated(gw, &key, &print, reserved).await? {
                return Ok(answer);
            }
        }
    }
    crate::lanes::route(gw, tenant, &mut spec)?;
    crate::admission::check_pressure(gw, tenant, &spec, now_ms()).await?;
    let lane = spec.lane.clone();
    let mut run_id = uuid::Uuid::now_v7().to_string();
    if !key.is_empty() {
        let ttl = gw.config.runs.idempotency_ttl_secs;
        let reserved = gw.store.reserve_idempotency(tenant, &key, &run_id, &print, ttl).await.map_err(store_error)?;
        if let Reservation::Existing { run_id: existing, .. } = &reserved {
            // Reserved since the lookup above (a concurrent submit with the same key), or by a
            // submit that died before writing its run.
            let existing = existing.clone();
            if let Some(answer) = deduplicated(gw, &key, &print, reserved).await? {
                return Ok(answer);
            }
            // An earlier submit reserved the key but died before writing the run: finish it.
            run_id = existing;
        }
    }
    let now = now_ms();
    let mut state = admit(&run_id, tenant, &key, spec, &policy, &catalog, now)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    state.traceparent = baton_telemetry::trace::current_traceparent().unwrap_or_default();
    crate::admission::admit_under_caps(gw, tenant, &lane, &run_id, now).await?;
    let mut events = Vec::new();
    push(&mut state, &mut events, EventKind::RunQueued, now, |_| {});
    let due = now + gw.config.runs.dispatch_grace_ms as i64;
    let entries = [(Index::Inflight, due), (Index::Deadlines, state.deadline_at_ms)];
    gw.store.index_set_all(&run_id, &entries).await.map_err(store_error)?;
    let created = gw.store.create_run(&state, &events[0]).await.map_err(store_error)?;
    if !created {
        let status =
            gw.store.load_run(&run_id).await.map_err(store_error)?.map_or(RunStatus::Queued as i32, |s| s.status);
        return Ok(SubmitRunResponse { run_id, deduplicated: true, status, lane });
    }
    metrics::counter!(crate::metric_definitions::SUBMITS, "result" => "admitted").increment(1);
    let task = baton_core::advance_task(&state, 0, 0, 0);
    // The run is durable from here on. Its in-flight entry stays until a worker claims it, so a
    // task that is lost or never consumed is re-dispatched by the reaper. The RUN_QUEUED event
    // reaches Kafka with the claiming worker's first batch (in order, in the same record).
    // The answer never waits on the broker longer than the configured bound: a record still
    // queued in the client may be delivered later (a duplicate task is dropped at claim).
    let wait = std::time::Duration::from_millis(gw.config.gateway.submit_dispatch_wait_ms);
    match tokio::time::timeout(wait, gw.producer.send_task(&task)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(run_id = %run_id, error = %e, "first task not dispatched; the reaper will retry"),
        Err(_) => tracing::warn!(run_id = %run_id, wait_ms = wait.as_millis() as u64,
            "broker slow to take the first task; answered anyway, the reaper dispatches it if it is lost"),
    }
    tracing::info!(run_id = %run_id, tenant, "run admitted");
    Ok(SubmitRunResponse { run_id, deduplicated: false, status: RunStatus::Queued as i32, lane })
}

/// The answer to a submit whose idempotency key is already reserved: the run it names
/// (`deduplicated`), ALREADY_EXISTS if the key was used with a different spec, or `None` when
/// the reservation's run was never written (the submit that reserved it died: this one
/// finishes it under the same run id).
async fn deduplicated(
    gw: &Gateway,
    key: &str,
    print: &str,
    reserved: Reservation,
) -> Result<Option<SubmitRunResponse>, Status> {
    let Reservation::Existing { run_id, fingerprint } = reserved else { return Ok(None) };
    if fingerprint != print {
        return Err(Status::already_exists(format!(
            "idempotency_key: {key:?} was already used for run {run_id} with a different spec"
        )));
    }
    let Some(state) = gw.store.load_run(&run_id).await.map_err(store_error)? else { return Ok(None) };
    if state.status() == RunStatus::Queued {
        // The first attempt may have died between writing the run and dispatching it, its
        // in-flight entry lost with a failover: make sure the reaper will look at the run.
        let due = now_ms() + gw.config.runs.dispatch_grace_ms as i64;
        gw.store.index_set_if_absent(Index::Inflight, &run_id, due).await.map_err(store_error)?;
    }
    metrics::counter!(crate::metric_definitions::SUBMITS, "result" => "deduplicated").increment(1);
    let (status, lane) = (state.status, state.lane);
    Ok(Some(SubmitRunResponse { run_id, deduplicated: true, status, lane }))
}
