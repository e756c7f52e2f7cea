//! Operator switches through `AdminService`: set a tool's `disabled` / `requires_approval`, a
//! lane's `paused`, a tenant's cap on active runs; list them with their audit trail. Every
//! change names who and why and is audited with the write; every service re-reads the switches
//! within `switches.refresh_ms`. The tenant cap is enforced here, at submit.

use baton_proto::v1::{
    BreakerState, ListSwitchesRequest, ListSwitchesResponse, SetLaneSwitchRequest, SetTenantCapRequest,
    SetToolSwitchRequest, SwitchChange, ToolInfo,
};
use baton_service::switches::name;
use baton_store::SwitchSetting;
use baton_telemetry::now_ms;
use tonic::Status;

use crate::convert::{actor_arg, store_error};
use crate::Gateway;

/// Entries of a tenant's active list checked per prune.
const PRUNE_BATCH: usize = 500;
/// A tenant's active list is pruned once it holds this many entries, cap or not.
const PRUNE_AT: u64 = 10_000;

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
async fn apply(gw: &Gateway, setting: SwitchSetting, in_force: bool) -> Result<SwitchChange, Status> {
    gw.store.set_switch(&setting, in_force).await.map_err(store_error)?;
    if let Err(e) = gw.switches.refresh(&gw.store).await {
        tracing::warn!(error = %e, "cannot re-read the switches; they refresh on their own");
    }
    metrics::counter!(crate::metric_definitions::SWITCH_CHANGES, "switch" => setting.switch.clone()).increment(1);
    tracing::info!(switch = %setting.switch, target = %setting.target, value = %setting.value,
        actor = %setting.actor, reason = %setting.reason, "operator switch changed");
    Ok(change_of(&setting))
}

fn who_and_why(actor: &str, reason: &str) -> Result<(String, String), Status> {
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

/// ListSwitches: what is in force and the latest changes.
pub async fn list(gw: &Gateway, req: ListSwitchesRequest) -> Result<ListSwitchesResponse, Status> {
    let limit = match req.audit_limit {
        0 => 50,
        n if n > 1_000 => return Err(Status::invalid_argument(format!("audit_limit: {n} is above 1000"))),
        n => n as usize,
    };
    let in_force = gw.store.switches().await.map_err(store_error)?.iter().map(change_of).collect();
    // The audit log holds other actions too (manifest reloads): read enough to fill the page.
    let entries = gw.store.audit_latest(limit * 4).await.map_err(store_error)?;
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

/// Lists `run_id` among the tenant's active runs, or refuses the submit when that puts the tenant
/// over its cap (RESOURCE_EXHAUSTED; the listing is taken back and nothing else is stored).
/// Runs that ended are pruned from the count first. One round trip while under the cap.
pub async fn admit_under_tenant_cap(gw: &Gateway, tenant: &str, run_id: &str, now_ms: i64) -> Result<(), Status> {
    let cap = gw.switches.now().tenant_caps.get(tenant).copied().unwrap_or(gw.config.runs.max_active_per_tenant);
    let cap = u64::from(cap);
    let count = gw.store.active_admit(tenant, run_id, now_ms).await.map_err(store_error)?;
    if (cap == 0 || count <= cap) && count < PRUNE_AT {
        return Ok(());
    }
    let listed = gw.store.active_list(tenant, (cap as usize).max(PRUNE_BATCH)).await.map_err(store_error)?;
    let mut ended = Vec::new();
    for listed_id in listed.into_iter().filter(|id| id != run_id) {
        let state = gw.store.load_run(&listed_id).await.map_err(store_error)?;
        if state.is_none_or(|s| baton_core::status::is_terminal(s.status())) {
            ended.push(listed_id);
        }
    }
    gw.store.active_drop(tenant, &ended).await.map_err(store_error)?;
    let others = count.saturating_sub(ended.len() as u64 + 1);
    if cap > 0 && others >= cap {
        gw.store.active_drop(tenant, &[run_id.to_string()]).await.map_err(store_error)?;
        metrics::counter!(crate::metric_definitions::CAPPED).increment(1);
        return Err(Status::resource_exhausted(format!(
            "tenant {tenant:?} has {others} runs not yet ended and its cap is {cap} (tenant.max_active_runs); submit again when one ends"
        )));
    }
    Ok(())
}
