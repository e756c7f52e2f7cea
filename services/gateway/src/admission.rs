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
/// An active list is pruned once it holds this many entries, cap or not, at most once per
/// [`PRUNE_LARGE_EVERY`] per gateway: a listing can be that large with every run in it still
/// going (100,000 runs parked on timers), and pruning it on every submit then cost each submit
/// 500 status reads per listing for nothing. The reaper's listings sweep removes ended runs too.
const PRUNE_AT: u64 = 10_000;
/// How often one gateway prunes a large listing that is not at its cap.
const PRUNE_LARGE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
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

/// Lists `run_id` among its tenant's and its lane's runs not yet ended (one round trip for
/// both), or refuses the submit when that puts either over its cap: the listings are taken
/// back and nothing else is stored.
pub async fn admit_under_caps(gw: &Gateway, tenant: &str, lane: &str, run_id: &str, now_ms: i64) -> Result<(), Status> {
    let switches = gw.switches.now();
    let caps = [
        (
            keys::active_runs(tenant),
            switches.tenant_caps.get(tenant).copied().unwrap_or(gw.config.runs.max_active_per_tenant),
            name::TENANT_MAX_ACTIVE_RUNS,
            format!("tenant {tenant:?}"),
        ),
        (
            keys::lane_active_runs(lane),
            switches.lane_caps.get(lane).copied().unwrap_or(gw.config.runs.max_active_per_lane),
            name::LANE_MAX_ACTIVE_RUNS,
            format!("lane {lane:?}"),
        ),
    ];
    let sets: Vec<String> = caps.iter().map(|(set, ..)| set.clone()).collect();
    let counts = gw.store.active_admit(&sets, run_id, now_ms).await.map_err(store_error)?;
    for ((set, cap, limit, who), count) in caps.iter().zip(counts) {
        let cap = u64::from(*cap);
        let over_cap = cap > 0 && count > cap;
        if !over_cap && (count < PRUNE_AT || !gw.prunes.due(set, std::time::Instant::now())) {
            continue;
        }
        // Over the cap (or the listing is large): drop the runs that ended, then count again.
        let (ended, _) = drop_ended(gw, set, (cap as usize).max(PRUNE_BATCH), run_id).await?;
        let others = count.saturating_sub(ended + 1);
        if cap > 0 && others >= cap {
            for set in &sets {
                gw.store.active_drop(set, &[run_id.to_string()]).await.map_err(store_error)?;
            }
            return Err(refuse(
                limit,
                format!(
                    "{who} has {others} runs not yet ended and its cap is {cap} ({limit}); submit again when one ends"
                ),
                RETRY_QUEUED_MS,
            ));
        }
    }
    Ok(())
}

/// When this gateway last pruned each large listing (not at its cap): such a prune is due once
/// per [`PRUNE_LARGE_EVERY`] per listing.
#[derive(Default)]
pub struct PruneClock(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);

impl PruneClock {
    /// Whether listing `set` is due a prune at `now`; if so, records it as pruned now.
    pub fn due(&self, set: &str, now: std::time::Instant) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(set) {
            Some(at) if now.duration_since(*at) < PRUNE_LARGE_EVERY => false,
            _ => {
                last.insert(set.to_string(), now);
                true
            }
        }
    }
}

/// Drops the runs that ended from the active set `set` (its first `limit` entries, `except`
/// left alone); returns how many were dropped and how many are still active.
pub(crate) async fn drop_ended(gw: &Gateway, set: &str, limit: usize, except: &str) -> Result<(u64, u64), Status> {
    let listed: Vec<String> =
        gw.store.active_list(set, limit).await.map_err(store_error)?.into_iter().filter(|id| id != except).collect();
    // One round trip for every listed run's status, not one per run.
    let statuses = gw.store.run_statuses(&listed).await.map_err(store_error)?;
    let mut ended = Vec::new();
    let mut active = 0;
    for (id, status) in listed.into_iter().zip(statuses) {
        match status {
            Some(s) if !baton_core::status::is_terminal(s) => active += 1,
            _ => ended.push(id),
        }
    }
    gw.store.active_drop(set, &ended).await.map_err(store_error)?;
    Ok((ended.len() as u64, active))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_listing_is_pruned_once_per_interval_each() {
        let clock = PruneClock::default();
        let start = std::time::Instant::now();
        assert!(clock.due("baton:active:a", start), "never pruned: due");
        assert!(!clock.due("baton:active:a", start + PRUNE_LARGE_EVERY / 2), "pruned a moment ago");
        assert!(clock.due("baton:active:b", start + PRUNE_LARGE_EVERY / 2), "another listing has its own clock");
        assert!(clock.due("baton:active:a", start + PRUNE_LARGE_EVERY), "the interval passed");
    }
}
