//! CheckReadiness: the production-readiness checklist items the gateway can judge from the
//! fleet's config and shared state — structured logs, timeouts, retry policy, limits, lanes for
//! canary and rollback, the audit log, human overrides, live workers, breakers, dead letters.
//! `batonctl readiness` adds the items only Prometheus can answer (metrics scraped, alerts
//! loaded) and decides the exit status.

use baton_proto::v1::{CheckReadinessResponse, ReadinessItem};
use baton_telemetry::now_ms;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

fn item(name: &str, owner: &str, ok: bool, blocking: bool, evidence: String, next_action: &str) -> ReadinessItem {
    let status = match (ok, blocking) {
        (true, _) => "pass",
        (false, true) => "fail",
        (false, false) => "warn",
    };
    ReadinessItem {
        name: name.into(),
        owner: owner.into(),
        status: status.into(),
        blocking,
        evidence,
        next_action: if ok { String::new() } else { next_action.into() },
    }
}

/// Judges the items from this gateway's config (the fleet shares one) and Redis.
pub async fn check(gw: &Gateway) -> Result<CheckReadinessResponse, Status> {
    let c = &gw.config;
    let fleet = gw.store.fleet_sample(now_ms()).await.map_err(store_error)?;
    let audit = gw.store.audit_latest(1).await.map_err(store_error)?;
    let switches = gw.switches.now();
    let capped = c.runs.max_active_per_tenant > 0 || !switches.tenant_caps.is_empty();
    let items = vec![
        item(
            "structured logs",
            "platform",
            c.telemetry.log_format == "json",
            true,
            format!("telemetry.log_format = {:?}", c.telemetry.log_format),
            "set telemetry.log_format = \"json\" so logs carry run, step, tenant and trace ids as fields",
        ),
        item(
            "timeouts configured",
            "platform",
            c.worker.step_timeout_ms > 0 && c.worker.step_timeout_ms <= 3_600_000,
            true,
            format!(
                "worker.step_timeout_ms = {}, default wall clock {} ms, tool manifest timeouts per tool",
                c.worker.step_timeout_ms, c.runs.default_wall_clock_ms
            ),
            "bound worker.step_timeout_ms (at most an hour) and give every manifest tool a timeout_ms",
        ),
        item(
            "retry policy",
            "platform",
            c.runs.default_max_attempts >= 2 && !c.scheduler.retry_tiers_ms.is_empty(),
            true,
            format!(
                "runs.default_max_attempts = {}, retry tiers {:?} ms",
                c.runs.default_max_attempts, c.scheduler.retry_tiers_ms
            ),
            "allow at least 2 attempts (runs.default_max_attempts) and configure scheduler.retry_tiers_ms",
        ),
        item(
            "limits set",
            "platform",
            capped,
            true,
            format!(
                "runs.max_active_per_tenant = {}, {} tenant caps switched on",
                c.runs.max_active_per_tenant,
                switches.tenant_caps.len()
            ),
            "cap tenants' active runs: runs.max_active_per_tenant, or `batonctl tenants cap TENANT N`",
        ),
        item(
            "canary and rollback",
            "release owner",
            c.runs.lanes.len() >= 2,
            false,
            format!("lanes: {}", c.runs.lanes.join(", ")),
            "configure a second lane (runs.lanes) to canary a new worker version and roll back by lane",
        ),
        item(
            "audit log",
            "security",
            true,
            true,
            format!("baton:audit holds operator changes; latest: {}", audit.first().map_or("none yet".into(), |e| e.action.clone())),
            "",
        ),
        item(
            "human override",
            "operations",
            true,
            true,
            format!(
                "operator switches (tools, lanes, tenants) and approvals (ttl {} ms, on deny {:?}) are on; {} switches in force",
                c.approvals.ttl_ms, c.approvals.on_deny, fleet.switches
            ),
            "",
        ),
        item(
            "workers live",
            "platform",
            fleet.workers >= 1,
            true,
            format!("{} workers beating", fleet.workers),
            "start workers for every lane",
        ),
        item(
            "circuit breakers",
            "platform",
            c.breakers.enabled,
            false,
            format!(
                "breakers.enabled = {}, open after {} failures in {} ms",
                c.breakers.enabled, c.breakers.failures, c.breakers.window_ms
            ),
            "set breakers.enabled = true so a failing tool is not hammered by the fleet",
        ),
        item(
            "dead letters handled",
            "operations",
            fleet.dead_letters == 0,
            false,
            format!("{} dead letters waiting", fleet.dead_letters),
            "look at `batonctl dlq list`; requeue or discard each",
        ),
    ];
    Ok(CheckReadinessResponse { items })
}
