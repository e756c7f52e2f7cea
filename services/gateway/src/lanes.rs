//! Lanes and rollout: a run submitted without a lane is routed by the lanes' weights — its
//! tenant's own route if an operator gave it one (`lane.weight` switches on `<lane>@<tenant>`),
//! else its agent's (`<lane>@agent:<name>`: the grpc agent or the model endpoint it names), else
//! the fleet's (config `[lanes.<name>] weight`, overridden by `lane.weight` on `<lane>`) —
//! and stamped with its lane's version set; both never change for that run (pinning).
//! ListLanes shows each lane; SetLaneWeights moves traffic (a canary, a rollback), audited like
//! every switch. A rollback sends no new run to the lane; the runs it holds finish on it.

use baton_core::lanes::{pick, stamp};
use baton_proto::v1::{LaneInfo, ListLanesResponse, RunSpec, SetLaneWeightsRequest, VersionSet};
use baton_service::switches::name;
use baton_store::{keys, SwitchSetting};
use baton_telemetry::now_ms;
use tonic::Status;

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

/// The switch target of `lane`'s weight in route `route`: `<tenant>`, `agent:<name>`, or empty
/// for the fleet's (`<lane>`).
fn target(lane: &str, route: &str) -> String {
    if route.is_empty() {
        lane.to_string()
    } else {
        format!("{lane}@{route}")
    }
}

/// True when an operator gave `route` weights of its own.
fn has_route(gw: &Gateway, route: &str) -> bool {
    gw.switches.now().routes.contains(route)
}

/// The route of a request: a tenant's, an agent's (`agent:<name>`), or the fleet's (empty).
fn route_key(tenant: &str, agent: &str) -> Result<String, Status> {
    match (tenant.is_empty(), agent.is_empty()) {
        (true, true) => Ok(String::new()),
        (false, true) => {
            crate::tenant::check_name(tenant).map_err(|m| Status::invalid_argument(format!("tenant: {m}")))?;
            Ok(tenant.to_string())
        }
        (true, false) => {
            crate::tenant::check_name(agent).map_err(|m| Status::invalid_argument(format!("agent: {m}")))?;
            Ok(format!("agent:{agent}"))
        }
        (false, false) => Err(Status::invalid_argument("name a tenant or an agent, not both")),
    }
}

/// The agent a spec names: its grpc agent or its model endpoint.
fn agent_of(spec: &RunSpec) -> Option<&str> {
    use baton_proto::v1::planner::Kind;
    match spec.planner.as_ref()?.kind.as_ref()? {
        Kind::Grpc(a) => Some(a.agent.as_str()),
        Kind::Model(m) => Some(m.endpoint.as_str()),
        Kind::Script(_) => None,
    }
}

/// Every lane's (name, configured weight, weight in force) in route `route` (empty: the
/// fleet's). With no weight anywhere, `main` (or the first lane) takes everything.
fn weights(gw: &Gateway, route: &str) -> Vec<(String, u32, u32)> {
    let switches = gw.switches.now();
    let own_route = has_route(gw, route);
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
            let weight = if own_route {
                switches.lane_weights.get(&target(lane, route)).copied().unwrap_or(0)
            } else {
                switches.lane_weights.get(lane.as_str()).copied().unwrap_or(configured)
            };
            (lane.clone(), configured, weight)
        })
        .collect()
}

/// Routes a spec without a lane (by its tenant's route, else its agent's, else the fleet's) and
/// stamps the version set of the lane it runs on.
pub fn route(gw: &Gateway, tenant: &str, spec: &mut RunSpec) -> Result<(), Status> {
    if spec.lane.is_empty() {
        let agent_route = agent_of(spec).map(|a| format!("agent:{a}")).unwrap_or_default();
        let key = if has_route(gw, tenant) {
            tenant
        } else if has_route(gw, &agent_route) {
            agent_route.as_str()
        } else {
            ""
        };
        let weights: Vec<(String, u32)> = weights(gw, key).into_iter().map(|(lane, _, w)| (lane, w)).collect();
        // A v7 uuid ends in 62 random bits: enough to roll with.
        let roll = uuid::Uuid::now_v7().as_u128() as u64 & ((1 << 62) - 1);
        let lane = pick(&weights, roll)
            .ok_or_else(|| Status::unavailable("every lane's routing weight is 0: no lane takes new runs"))?;
        spec.lane = lane.to_string();
    }
    spec.versions = Some(stamp(spec.versions.take(), &versions(gw, &spec.lane)));
    Ok(())
}

/// ListLanes: the lanes, with the weights of a tenant's or an agent's route (neither: the fleet's).
pub async fn list(gw: &Gateway, tenant: &str, agent: &str) -> Result<ListLanesResponse, Status> {
    let route = route_key(tenant, agent)?;
    let switches = gw.switches.now();
    let mut lanes = Vec::new();
    for (lane, configured, weight) in weights(gw, &route) {
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
    let (actor, reason) = crate::switches::who_and_why(&req.actor, &req.reason)?;
    if req.reset != req.weights.is_empty() {
        return Err(Status::invalid_argument("give either weights or reset"));
    }
    let route = route_key(&req.tenant, &req.agent)?;
    let current = weights(gw, &route);
    if req.reset {
        for (lane, _, _) in &current {
            write(gw, &target(lane, &route), 0, &actor, &reason, false).await?;
        }
    } else {
        for (lane, weight) in &req.weights {
            if !gw.config.runs.lanes.contains(lane) {
                return Err(Status::invalid_argument(format!(
                    "weights: unknown lane {lane:?} (lanes: {:?})",
                    gw.config.runs.lanes
                )));
            }
            if *weight > 10_000 {
                return Err(Status::invalid_argument(format!("weights[{lane:?}]: {weight} is above 10000")));
            }
        }
        // A first route of a tenant or agent starts from nothing: lanes it does not name get none.
        let own_route_before = route.is_empty() || has_route(gw, &route);
        let after: u64 = current
            .iter()
            .map(|(lane, _, w)| {
                let kept = if own_route_before { *w } else { 0 };
                u64::from(req.weights.get(lane).copied().unwrap_or(kept))
            })
            .sum();
        if after == 0 {
            return Err(Status::failed_precondition("these weights would leave no lane taking new runs"));
        }
        for (lane, weight) in &req.weights {
            write(gw, &target(lane, &route), *weight, &actor, &reason, true).await?;
        }
    }
    list(gw, &req.tenant, &req.agent).await
}

/// One weight, as an audited switch (in force, or dropped to fall back on the configured one).
async fn write(
    gw: &Gateway,
    target: &str,
    weight: u32,
    actor: &str,
    reason: &str,
    in_force: bool,
) -> Result<(), Status> {
    let setting = SwitchSetting {
        switch: name::LANE_WEIGHT.into(),
        target: target.to_string(),
        value: weight.to_string(),
        actor: actor.to_string(),
        reason: reason.to_string(),
        at_ms: now_ms(),
    };
    crate::switches::apply(gw, setting, in_force).await.map(|_| ())
}

/// The lane's runs not yet ended (the listing is pruned of ended ones on the way).
async fn count_active(gw: &Gateway, lane: &str) -> Result<u64, Status> {
    let set = keys::lane_active_runs(lane);
    crate::admission::drop_ended(gw, &set, COUNT_AT_MOST, "").await.map(|(_, active)| active)
}
