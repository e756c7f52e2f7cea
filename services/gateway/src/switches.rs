//! Operator switches through `AdminService`: set a tool's `disabled` / `requires_approval`, a
//! lane's `paused`, the admission limits (`SetTenantCap`, `SetLimit`); list them with their
//! audit trail. Every change names who and why and is audited with the write; every service
//! re-reads the switches within `switches.refresh_ms`. The limits are enforced at submit
//! ([`crate::admission`]).

use baton_proto::v1::{
    BreakerState, ListSwitchesRequest, ListSwitchesResponse, SetLaneSwitchRequest, SetLimitRequest,
    SetTenantCapRequest, SetToolSwitchRequest, SwitchChange, ToolInfo,
};
use baton_service::switches::name;
use baton_store::SwitchSetting;
use baton_telemetry::now_ms;
use tonic::Status;

use crate::convert::{actor_arg, store_error};
use crate::Gateway;

fn change_of(s: &SwitchSetting) -> SwitchChange {
    SwitchChange {
        switch: s.switch.clone(),
        target: s.target.clone(),
        value: s.value.clone(),
        actor: s.actor.clone(),
        reason: s.reason.clone(),
        at_ms: s.at_ms,
    }
}

/// Writes one change (audited), refreshes this gateway's view, and returns it.
pub(crate) async fn apply(gw: &Gateway, setting: SwitchSetting, in_force: bool) -> Result<SwitchChange, Status> {
    gw.store.set_switch(&setting, in_force).await.map_err(store_error)?;
    if let Err(e) = gw.switches.refresh(&gw.store).await {
        tracing::warn!(error = %e, "cannot re-read the switches; they refresh on their own");
    }
    metrics::counter!(crate::metric_definitions::SWITCH_CHANGES, "switch" => setting.switch.clone()).increment(1);
    tracing::info!(switch = %setting.switch, target = %setting.target, value = %setting.value,
        actor = %setting.actor, reason = %setting.reason, "operator switch changed");
    Ok(change_of(&setting))
}

pub(crate) fn who_and_why(actor: &str, reason: &str) -> Result<(String, String), Status> {
    let actor = actor_arg(actor, reason, "changes the switch")?;
    if reason.trim().is_empty() {
        return Err(Status::invalid_argument("reason: is required (why the switch changes; it is audited)"));
    }
    Ok((actor, reason.trim().to_string()))
}

/// SetToolSwitch: exactly one of `disabled`, `requires_approval`.
pub async fn set_tool(gw: &Gateway, req: SetToolSwitchRequest) -> Result<SwitchChange, Status> {
    let (actor, reason) = who_and_why(&req.actor, &req.reason)?;
    if gw.tools.catalog().get(&req.tool).is_none() {
        return Err(Status::not_found(format!("tool {:?} is not in the catalog", req.tool)));
    }
    let (switch, on) = match (req.disabled, req.requires_approval) {
        (Some(on), None) => (name::TOOL_DISABLED, on),
        (None, Some(on)) => (name::TOOL_REQUIRES_APPROVAL, on),
        _ => return Err(Status::invalid_argument("set exactly one of disabled, requires_approval")),
    };
    let setting = SwitchSetting {
        switch: switch.into(),
        target: req.tool,
        value: on.to_string(),
        actor,
        reason,
        at_ms: now_ms(),
    };
    apply(gw, setting, on).await
}

/// SetLaneSwitch: pause or resume a configured lane.
pub async fn set_lane(gw: &Gateway, req: SetLaneSwitchRequest) -> Result<SwitchChange, Status> {
    let (actor, reason) = who_and_why(&req.actor, &req.reason)?;
    if !gw.config.runs.lanes.contains(&req.lane) {
        let lanes = gw.config.runs.lanes.join(", ");
        return Err(Status::not_found(format!("lane {:?} is not configured (lanes: {lanes})", req.lane)));
    }
    let setting = SwitchSetting {
        switch: name::LANE_PAUSED.into(),
        target: req.lane,
        value: req.paused.to_string(),
        actor,
        reason,
        at_ms: now_ms(),
    };
    apply(gw, setting, req.paused).await
}

/// SetTenantCap: a tenant's cap on active runs (0: back to `runs.max_active_per_tenant`).
pub async fn set_tenant_cap(gw: &Gateway, req: SetTenantCapRequest) -> Result<SwitchChange, Status> {
    let (actor, reason) = who_and_why(&req.actor, &req.reason)?;
    crate::tenant::check_name(&req.tenant).map_err(|m| Status::invalid_argument(format!("tenant: {m}")))?;
    let setting = SwitchSetting {
        switch: name::TENANT_MAX_ACTIVE_RUNS.into(),
        target: req.tenant,
        value: req.max_active_runs.to_string(),
        actor,
        reason,
        at_ms: now_ms(),
    };
    apply(gw, setting, req.max_active_runs > 0).await
}

/// SetLimit: an admission limit for a tenant or a lane (0: back to the configured default).
pub async fn set_limit(gw: &Gateway, req: SetLimitRequest) -> Result<SwitchChange, Status> {
    let (actor, reason) = who_and_why(&req.actor, &req.reason)?;
    let Some((limit, applies_to)) = name::LIMITS.iter().find(|(l, _)| *l == req.limit) else {
        let known: Vec<&str> = name::LIMITS.iter().map(|(l, _)| *l).collect();
        return Err(Status::invalid_argument(format!("limit: {:?} is not one of {}", req.limit, known.join(", "))));
    };
    crate::tenant::check_name(&req.target)
        .map_err(|m| Status::invalid_argument(format!("target ({applies_to}): {m}")))?;
    if *applies_to == "lane" && !gw.config.runs.lanes.contains(&req.target) {
        return Err(Status::invalid_argument(format!("target: unknown lane {:?}", req.target)));
    }
    if *limit != name::LANE_MAX_QUEUED && req.value > u64::from(u32::MAX) {
        return Err(Status::invalid_argument(format!("value: {} is too large for {limit}", req.value)));
    }
    let setting = SwitchSetting {
        switch: limit.to_string(),
        target: req.target,
        value: req.value.to_string(),
        actor,
        reason,
        at_ms: now_ms(),
    };
    apply(gw, setting, req.value > 0).await
}

/// ListSwitches: what is in force and the latest changes.
pub async fn list(gw: &Gateway, req: ListSwitchesRequest) -> Result<ListSwitchesResponse, Status> {
    let limit = match req.audit_limit {
        0 => 50,
        n if n > 1_000 => return Err(Status::invalid_argument(format!("audit_limit: {n} is above 1000"))),
        n => n as usize,
    };
    let in_force = gw.store.switches().await.map_err(store_error)?.iter().map(change_of).collect();
    // The audit log holds other actions too (manifest reloads, keys, approval decisions): read
    // enough to fill the page, the whole capped log if the latest entries are mostly others.
    let is_switch = |e: &&baton_store::AuditEntry| e.action.starts_with("switch:");
    let mut entries = gw.store.audit_latest(limit * 4).await.map_err(store_error)?;
    if entries.len() == limit * 4 && entries.iter().filter(is_switch).count() < limit {
        entries = gw.store.audit_latest(baton_store::AUDIT_MAX_LEN).await.map_err(store_error)?;
    }
    let audit = entries
        .into_iter()
        .filter_map(|e| {
            let (switch, target) = e.action.strip_prefix("switch:")?.split_once(':')?;
            Some(SwitchChange {
                switch: switch.into(),
                target: target.into(),
                value: e.outcome,
                actor: e.actor,
                reason: e.detail,
                at_ms: e.at_ms,
            })
        })
        .take(limit)
        .collect();
    Ok(ListSwitchesResponse { in_force, audit })
}

/// The tools as loaded, with the switches and breakers read from Redis now.
pub async fn tools_with_state(gw: &Gateway) -> Result<Vec<ToolInfo>, Status> {
    let switches = baton_service::switches::SwitchState::from_settings(gw.store.switches().await.map_err(store_error)?);
    let window_ms = gw.config.breakers.window_ms;
    let mut tools = Vec::new();
    for tool in gw.tools.catalog().tools() {
        let mut info = tool.info();
        info.disabled = switches.gates.disabled.contains(&info.name);
        info.requires_approval |= switches.gates.approval.contains(&info.name);
        if info.kind != "builtin" {
            let b = gw.store.breaker_view(&info.name, now_ms(), window_ms).await.map_err(store_error)?;
            info.breaker = Some(BreakerState { state: b.state, failures: b.failures, open_until_ms: b.until_ms });
        }
        tools.push(info);
    }
    Ok(tools)
}
