//! Admission control before a run is stored: a tenant's submit rate (token bucket in Redis,
//! shared by every gateway), a lane's queue (its consumer lag as the reaper last read it), and
//! caps on runs not yet ended per tenant and per lane. Every limit has a config default and an
//! audited run-time override (`SetLimit`, read through the operator switches). A refusal is
//! RESOURCE_EXHAUSTED naming the limit, with a `retry-after-ms` hint, and stores nothing.
//! Priority classes: a LOW submit is refused at half the lane's queue limit and keeps half the
//! tenant's burst for others; a HIGH one is not held by the lane's queue limit.

use baton_proto::v1::{Priority, RunSpec};
use baton_service::switches::name;
use baton_store::{keys, Bucket};
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

/// Entries of an active list checked per prune.
const PRUNE_BATCH: usize = 500;
/// An active list is pruned once it holds this many entries, cap or not.
const PRUNE_AT: u64 = 10_000;
/// A lag reading older than this is not trusted (the reaper is down): the queue limit is not
/// applied rather than applied to stale figures.
const LAG_FRESH_MS: i64 = 30_000;
/// How long a client refused at a queue or cap limit is told to wait.
const RETRY_QUEUED_MS: u64 = 1_000;

/// The lane a spec runs on.
pub fn lane_of(spec: &RunSpec) -> &str {
    if spec.lane.is_empty() {
        "main"
    } else {
        spec.lane.as_str()
    }
}

/// Checks the tenant's submit rate and the lane's queue; takes a submit token if both allow.
/// Runs before anything is stored.
pub async fn check_pressure(gw: &Gateway, tenant: &str, spec: &RunSpec, now_ms: i64) -> Result<(), Status> {
    let switches = gw.switches.now();
    let priority = spec.priority();
    let lane = lane_of(spec);
    let limit = switches.lane_queue_limits.get(lane).copied().unwrap_or(gw.config.runs.max_queued_per_lane);
    if limit > 0 && priority != Priority::High {
        let limit = if priority == Priority::Low { (limit / 2).max(1) } else { limit };
        if let Some(&(queued, at_ms)) = switches.lane_lag.get(lane) {
            if now_ms - at_ms <= LAG_FRESH_MS && queued >= limit {
                return Err(refuse(
                    name::LANE_MAX_QUEUED,
                    format!(
                        "lane {lane:?} has {queued} tasks queued and refuses new runs from {limit} ({}{}); submit again in a moment",
                        name::LANE_MAX_QUEUED,
                        if priority == Priority::Low { ", halved for a low-priority run" } else { "" }
                    ),
                    RETRY_QUEUED_MS,
                ));
            }
        }
    }
    let rate = switches.tenant_rates.get(tenant).copied().unwrap_or(gw.config.runs.submit_rate_per_tenant);
    if rate > 0 {
        let burst = gw.config.runs.submit_burst_per_tenant.max(rate);
        let keep = if priority == Priority::Low { burst / 2 } else { 0 };
        let taken = gw.store.take_submit_token(tenant, now_ms, rate, burst, keep).await.map_err(store_error)?;
        if let Bucket::Empty(wait_ms) = taken {
            return Err(refuse(
                name::TENANT_SUBMIT_RATE,
                format!(
                    "tenant {tenant:?} is over its submit rate of {rate}/s (burst {burst}, {}); submit again in {wait_ms} ms",
                    name::TENANT_SUBMIT_RATE
                ),
                wait_ms,
            ));
        }
    }
    Ok(())
}

/// Lists `run_id` among its tenant's and its lane's runs not yet ended, or refuses the submit
/// when that puts either over its cap (the listings are taken back; nothing else is stored).
pub async fn admit_under_caps(gw: &Gateway, tenant: &str, lane: &str, run_id: &str, now_ms: i64) -> Result<(), Status> {
    let switches = gw.switches.now();
    let tenant_cap = switches.tenant_caps.get(tenant).copied().unwrap_or(gw.config.runs.max_active_per_tenant);
    let tenant_set = keys::active_runs(tenant);
    under_cap(gw, &tenant_set, run_id, tenant_cap, now_ms, |others| {
        refuse(
            name::TENANT_MAX_ACTIVE_RUNS,
            format!(
                "tenant {tenant:?} has {others} runs not yet ended and its cap is {tenant_cap} ({}); submit again when one ends",
                name::TENANT_MAX_ACTIVE_RUNS
            ),
            RETRY_QUEUED_MS,
        )
    })
    .await?;
    let lane_cap = switches.lane_caps.get(lane).copied().unwrap_or(gw.config.runs.max_active_per_lane);
    let lane_set = keys::lane_active_runs(lane);
    let lane_admitted = under_cap(gw, &lane_set, run_id, lane_cap, now_ms, |others| {
        refuse(
            name::LANE_MAX_ACTIVE_RUNS,
            format!(
                "lane {lane:?} has {others} runs not yet ended and its cap is {lane_cap} ({}); submit again when one ends",
                name::LANE_MAX_ACTIVE_RUNS
            ),
            RETRY_QUEUED_MS,
        )
    })
    .await;
    if lane_admitted.is_err() {
        gw.store.active_drop(&tenant_set, &[run_id.to_string()]).await.map_err(store_error)?;
    }
    lane_admitted
}

/// Lists `run_id` in the active set `set` and checks `cap` (0: none), pruning ended runs from
/// the set when it is at the cap (or large). One round trip while under the cap.
async fn under_cap(
    gw: &Gateway,
    set: &str,
    run_id: &str,
    cap: u32,
    now_ms: i64,
    refusal: impl FnOnce(u64) -> Status,
) -> Result<(), Status> {
    let cap = u64::from(cap);
    let count = gw.store.active_admit(set, run_id, now_ms).await.map_err(store_error)?;
    if (cap == 0 || count <= cap) && count < PRUNE_AT {
        return Ok(());
    }
    let listed = gw.store.active_list(set, (cap as usize).max(PRUNE_BATCH)).await.map_err(store_error)?;
    let mut ended = Vec::new();
    for listed_id in listed.into_iter().filter(|id| id != run_id) {
        let state = gw.store.load_run(&listed_id).await.map_err(store_error)?;
        if state.is_none_or(|s| baton_core::status::is_terminal(s.status())) {
            ended.push(listed_id);
        }
    }
    gw.store.active_drop(set, &ended).await.map_err(store_error)?;
    let others = count.saturating_sub(ended.len() as u64 + 1);
    if cap > 0 && others >= cap {
        gw.store.active_drop(set, &[run_id.to_string()]).await.map_err(store_error)?;
        return Err(refusal(others));
    }
    Ok(())
}

/// RESOURCE_EXHAUSTED naming `limit`, with a `retry-after-ms` hint; counted by limit.
fn refuse(limit: &'static str, message: String, retry_after_ms: u64) -> Status {
    metrics::counter!(crate::metric_definitions::REFUSED, "limit" => limit).increment(1);
    let mut status = Status::resource_exhausted(message);
    if let Ok(value) = retry_after_ms.to_string().parse() {
        status.metadata_mut().insert("retry-after-ms", value);
    }
    status
}
