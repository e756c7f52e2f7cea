//! Lanes and rollout: a run submitted without a lane is routed by the lanes' weights (config
//! `[lanes.<name>] weight`, overridden by an operator's `lane.weight` switch) and stamped with
//! its lane's version set; both never change for that run (pinning). ListLanes shows each lane;
//! SetLaneWeights moves traffic (a canary, a rollback), audited like every switch. A rollback
//! sends no new run to the lane; the runs it holds finish on it.

use baton_core::lanes::{pick, stamp};
use baton_proto::v1::{LaneInfo, ListLanesResponse, RunSpec, SetLaneWeightsRequest, VersionSet};
use baton_service::switches::name;
use baton_store::{keys, SwitchSetting};
use baton_telemetry::now_ms;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

/// Most runs checked per lane when ListLanes counts the runs not yet ended.
const COUNT_AT_MOST: usize = 1_000;

/// The lane's configured version set (the build defaults to this gateway's version).
fn versions(gw: &Gateway, lane: &str) -> VersionSet {
    let l = gw.config.lanes.get(lane).cloned().unwrap_or_default();
    let build = if l.build.is_empty() { env!("CARGO_PKG_VERSION").to_string() } else { l.build };
    VersionSet {
        agent: l.agent,
        model: l.model,
        prompt: l.prompt,
        policy: l.policy,
        tool_schema: l.tool_schema,
        baton_build: build,
    }
}

/// Every lane's (name, configured weight, weight in force). With no weight anywhere, `main`
/// (or the first lane) takes everything.
fn weights(gw: &Gateway) -> Vec<(String, u32, u32)> {
    let overrides = gw.switches.now().lane_weights.clone();
    let lanes = &gw.config.runs.lanes;
    let any_configured = gw.config.lanes.values().any(|l| l.weight > 0);
    let fallback = if lanes.iter().any(|l| l == "main") { "main" } else { lanes[0].as_str() };
    lanes
        .iter()
        .map(|lane| {
            let configured = match gw.config.lanes.get(lane) {
                Some(l) if any_configured => l.weight,
                _ if !any_configured && lane == fallback => 100,
                _ => 0,
            };
            let weight = overrides.get(lane).copied().unwrap_or(configured);
            (lane.clone(), configured, weight)
        })
        .collect()
}

/// Routes a spec without a lane (by weight) and stamps the version set of the lane it runs on.
pub fn route(gw: &Gateway, spec: &mut RunSpec) -> Result<(), Status> {
    if spec.lane.is_empty() {
        let weights: Vec<(String, u32)> = weights(gw).into_iter().map(|(lane, _, w)| (lane, w)).collect();
        // A v7 uuid ends in 62 random bits: enough to roll with.
        let roll = uuid::Uuid::now_v7().as_u128() as u64 & ((1 << 62) - 1);
        let lane = pick(&weights, roll)
            .ok_or_else(|| Status::unavailable("every lane's routing weight is 0: no lane takes new runs"))?;
        spec.lane = lane.to_string();
    }
    spec.versions = Some(stamp(spec.versions.take(), &versions(gw, &spec.lane)));
    Ok(())
}

/// ListLanes.
pub async fn list(gw: &Gateway) -> Result<ListLanesResponse, Status> {
    let switches = gw.switches.now();
    let mut lanes = Vec::new();
    for (lane, configured, weight) in weights(gw) {
        let active_runs = count_active(gw, &lane).await?;
        lanes.push(LaneInfo {
            paused: switches.paused_lanes.contains(&lane),
            queued: switches.lane_lag.get(&lane).map_or(0, |(lag, _)| *lag),
            versions: Some(versions(gw, &lane)),
            name: lane,
            weight,
            configured_weight: configured,
            active_runs,
        });
    }
    Ok(ListLanesResponse { lanes })
}

/// SetLaneWeights: every named lane's weight (audited), or back to the configured ones.
pub async fn set_weights(gw: &Gateway, req: SetLaneWeightsRequest) -> Result<ListLanesResponse, Status> {
    let actor = crate::convert::actor_arg(&req.actor, &req.reason, "changes lane weights")?;
    if req.reason.trim().is_empty() {
        return Err(Status::invalid_argument("reason: is required (why traffic moves; it is audited)"));
    }
    if req.reset == !req.weights.is_empty() {
        return Err(Status::invalid_argument("give either weights or reset"));
    }
    let current = weights(gw);
    if req.reset {
        for (lane, _, _) in &current {
            write(gw, lane, 0, &actor, &req.reason, false).await?;
        }
    } else {
        for (lane, weight) in &req.weights {
            if !gw.config.runs.lanes.contains(lane) {
                return Err(Status::invalid_argument(format!("weights: unknown lane {lane:?} (lanes: {:?})", gw.config.runs.lanes)));
            }
            if *weight > 10_000 {
                return Err(Status::invalid_argument(format!("weights[{lane:?}]: {weight} is above 10000")));
            }
        }
        let after: u64 = current
            .iter()
            .map(|(lane, _, w)| u64::from(req.weights.get(lane).copied().unwrap_or(*w)))
            .sum();
        if after == 0 {
            return Err(Status::failed_precondition("these weights would leave no lane taking new runs"));
        }
        for (lane, weight) in &req.weights {
            write(gw, lane, *weight, &actor, &req.reason, true).await?;
        }
    }
    if let Err(e) = gw.switches.refresh(&gw.store).await {
        tracing::warn!(error = %e, "cannot re-read the switches; they refresh on their own");
    }
    list(gw).await
}

async fn write(gw: &Gateway, lane: &str, weight: u32, actor: &str, reason: &str, in_force: bool) -> Result<(), Status> {
    let setting = SwitchSetting {
        switch: name::LANE_WEIGHT.into(),
        target: lane.to_string(),
        value: weight.to_string(),
        actor: actor.to_string(),
        reason: reason.trim().to_string(),
        at_ms: now_ms(),
    };
    gw.store.set_switch(&setting, in_force).await.map_err(store_error)?;
    metrics::counter!(crate::metric_definitions::SWITCH_CHANGES, "switch" => name::LANE_WEIGHT).increment(1);
    tracing::info!(lane, weight, actor, reason, reset = !in_force, "lane weight changed");
    Ok(())
}

/// The lane's runs not yet ended (the listing is pruned of ended ones on the way).
async fn count_active(gw: &Gateway, lane: &str) -> Result<u64, Status> {
    let set = keys::lane_active_runs(lane);
    let listed = gw.store.active_list(&set, COUNT_AT_MOST).await.map_err(store_error)?;
    let mut ended = Vec::new();
    let mut active = 0;
    for id in listed {
        match gw.store.load_run(&id).await.map_err(store_error)? {
            Some(s) if !baton_core::status::is_terminal(s.status()) => active += 1,
            _ => ended.push(id),
        }
    }
    gw.store.active_drop(&set, &ended).await.map_err(store_error)?;
    Ok(active)
}
