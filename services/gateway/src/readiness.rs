//! CheckReadiness: the production-readiness checklist items the gateway can judge from the
//! fleet's config and shared state — structured logs, timeouts, retry policy, limits, lanes for
//! canary and rollback, the audit log, human overrides, live workers, breakers, dead letters.
//! The audit log and human overrides are judged from what the live fleet did: audit entries
//! written in the last [`AUDIT_WINDOW_MS`], an operator switch changed in that window or in
//! force, and an approval path configured (a tool that needs approval) or exercised (a
//! decision in the window, or a run waiting for one). `batonctl readiness` adds the items only
//! Prometheus can answer (metrics scraped, alerts loaded) and decides the exit status.

use baton_proto::v1::{CheckReadinessResponse, ReadinessItem};
use baton_store::AuditEntry;
use baton_telemetry::now_ms;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

/// How far back the audit log is looked at: a week.
pub const AUDIT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most audit entries read for the checklist.
const AUDIT_SCAN: usize = 1_000;

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
    let now = now_ms();
    let fleet = gw.store.fleet_sample(now).await.map_err(store_error)?;
    let recent = gw.store.audit_since(now - AUDIT_WINDOW_MS, AUDIT_SCAN).await.map_err(store_error)?;
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
        audit_log(&recent, now),
        human_override(gw, &recent, fleet.switches, fleet.approvals, &switches),
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

/// Passes when the audit log was written in the window: the newest entry shows it works.
fn audit_log(recent: &[AuditEntry], now: i64) -> ReadinessItem {
    let count = if recent.len() >= AUDIT_SCAN { format!("{AUDIT_SCAN} or more") } else { recent.len().to_string() };
    let evidence = match recent.first() {
        Some(e) => format!(
            "{count} entries in baton:audit in the last 7 days; latest: {} by {} ({}), {} min ago",
            e.action,
            e.actor,
            e.outcome,
            (now - e.at_ms).max(0) / 60_000
        ),
        None => "no entry in baton:audit in the last 7 days: nothing shows operator actions being recorded".into(),
    };
    item(
        "audit log",
        "security",
        !recent.is_empty(),
        true,
        evidence,
        "exercise the audit trail: change a switch with a reason (e.g. `batonctl tools require-approval TOOL \
         --reason drill`, then `no-approval`) and check `batonctl switches` shows who, when and why",
    )
}

/// Passes when an operator switch was changed in the window or is in force, and an approval
/// path is configured (a tool that needs approval, by manifest or switch) or was exercised (a
/// decision in the window, or a run waiting for one now).
fn human_override(
    gw: &Gateway,
    recent: &[AuditEntry],
    switches_in_force: u64,
    approvals_waiting: u64,
    state: &baton_service::switches::SwitchState,
) -> ReadinessItem {
    let switch_changes = recent.iter().filter(|e| e.action.starts_with("switch:")).count();
    let decisions = recent.iter().filter(|e| e.action.starts_with("approval.")).count();
    let mut gated: std::collections::BTreeSet<String> =
        gw.tools.catalog().tools().filter(|t| t.def.requires_approval).map(|t| t.def.name.clone()).collect();
    gated.extend(state.gates.approval.iter().cloned());
    let switch_ok = switch_changes > 0 || switches_in_force > 0;
    let approval_ok = !gated.is_empty() || decisions > 0 || approvals_waiting > 0;
    let evidence = format!(
        "operator switches: {switches_in_force} in force, {switch_changes} changes in the last 7 days; approval path: \
         tools needing approval [{}], {decisions} decisions in the last 7 days, {approvals_waiting} runs waiting \
         (approvals ttl {} ms, on deny {:?})",
        gated.iter().cloned().collect::<Vec<_>>().join(", "),
        gw.config.approvals.ttl_ms,
        gw.config.approvals.on_deny
    );
    let mut next = Vec::new();
    if !switch_ok {
        next.push("exercise an operator switch (e.g. `batonctl lanes pause LANE --reason drill`, then `resume`)");
    }
    if !approval_ok {
        next.push(
            "give a person a say: a manifest tool with requires_approval = true or `batonctl tools require-approval \
             TOOL`, or approve or deny a waiting run",
        );
    }
    item("human override", "operations", switch_ok && approval_ok, true, evidence, &next.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_log_item_passes_only_with_an_entry_in_the_window_and_names_the_latest() {
        let empty = audit_log(&[], 1_000_000);
        assert_eq!((empty.status.as_str(), empty.blocking), ("fail", true));
        assert!(!empty.next_action.is_empty());
        let entry = AuditEntry {
            at_ms: 1_000_000 - 120_000,
            actor: "ops-ann".into(),
            action: "switch:lane.paused:main".into(),
            outcome: "true".into(),
            detail: "drill".into(),
        };
        let item = audit_log(&[entry], 1_000_000);
        assert_eq!(item.status, "pass");
        assert!(item.evidence.contains("switch:lane.paused:main by ops-ann") && item.evidence.contains("2 min ago"));
        assert!(item.next_action.is_empty());
    }
}
