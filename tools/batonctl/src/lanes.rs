//! `lanes list|weights|rollback|drain|reset|pause|resume`: where new runs go and how a release
//! is rolled out or back. Every change is audited by the gateway; a run never leaves the lane it
//! was admitted to.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use baton_proto::v1::{ListLanesRequest, ListLanesResponse, SetLaneSwitchRequest, SetLaneWeightsRequest};
use batonctl::client::Client;
use serde_json::{json, Value};

use crate::cli::{LanesCommand, RouteArgs};
use crate::output::Printer;

/// Runs one `lanes` subcommand.
pub async fn run(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    command: LanesCommand,
) -> anyhow::Result<ExitCode> {
    let actor = actor.to_string();
    let weights = |weights: BTreeMap<String, u32>, reason: String, RouteArgs { tenant, agent }: RouteArgs| {
        SetLaneWeightsRequest { weights, reset: false, actor: actor.clone(), reason, tenant, agent }
    };
    let lanes = match command {
        LanesCommand::Pause { lane, reason } => return pause(client, printer, &actor, lane, true, reason).await,
        LanesCommand::Resume { lane, reason } => return pause(client, printer, &actor, lane, false, reason).await,
        LanesCommand::List { route: RouteArgs { tenant, agent } } => {
            client.admin.list_lanes(client.request(ListLanesRequest { tenant, agent })).await?.into_inner()
        }
        LanesCommand::Weights { weights: pairs, reason, route } => {
            let req = weights(parse_weights(&pairs)?, reason, route);
            client.admin.set_lane_weights(client.request(req)).await?.into_inner()
        }
        LanesCommand::Rollback { lane, reason, route } => {
            let req = weights(BTreeMap::from([(lane, 0)]), reason, route);
            client.admin.set_lane_weights(client.request(req)).await?.into_inner()
        }
        LanesCommand::Reset { reason, route: RouteArgs { tenant, agent } } => {
            let req = SetLaneWeightsRequest {
                weights: BTreeMap::new(),
                reset: true,
                actor: actor.clone(),
                reason,
                tenant,
                agent,
            };
            client.admin.set_lane_weights(client.request(req)).await?.into_inner()
        }
        LanesCommand::Drain { lane, reason, timeout_secs } => {
            let req = weights(BTreeMap::from([(lane.clone(), 0)]), reason, RouteArgs::default());
            client.admin.set_lane_weights(client.request(req)).await?;
            let deadline = Instant::now() + Duration::from_secs(timeout_secs);
            loop {
                let now = client.admin.list_lanes(client.request(ListLanesRequest::default())).await?.into_inner();
                let left = now.lanes.iter().find(|l| l.name == lane).map_or(0, |l| l.active_runs);
                if left == 0 {
                    print(printer, &now)?;
                    eprintln!("lane {lane} is drained: no run left on it");
                    return Ok(ExitCode::SUCCESS);
                }
                if Instant::now() >= deadline {
                    print(printer, &now)?;
                    eprintln!("lane {lane} still holds {left} runs after {timeout_secs} s");
                    return Ok(ExitCode::from(3));
                }
                eprintln!("lane {lane}: {left} runs not yet ended");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    print(printer, &lanes)?;
    Ok(ExitCode::SUCCESS)
}

async fn pause(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    lane: String,
    paused: bool,
    reason: String,
) -> anyhow::Result<ExitCode> {
    let req = SetLaneSwitchRequest { lane, paused, actor: actor.to_string(), reason };
    let change = client.admin.set_lane_switch(client.request(req)).await?.into_inner();
    crate::switches::print_change(printer, &change)?;
    Ok(ExitCode::SUCCESS)
}

/// `main=95 canary=5` → {main: 95, canary: 5}.
fn parse_weights(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    pairs
        .iter()
        .map(|p| {
            let (lane, weight) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("{p:?}: expected LANE=WEIGHT"))?;
            let weight = weight.parse().map_err(|_| anyhow::anyhow!("{p:?}: the weight is not a whole number"))?;
            Ok((lane.to_string(), weight))
        })
        .collect()
}

/// The lanes, as JSON (`{"lanes": [...]}`) or one line each.
fn print(printer: Printer, resp: &ListLanesResponse) -> std::io::Result<()> {
    printer.emit(|| json_list(resp), || text_list(resp))
}

fn json_list(resp: &ListLanesResponse) -> Value {
    let lanes: Vec<_> = resp
        .lanes
        .iter()
        .map(|l| {
            let v = l.versions.clone().unwrap_or_default();
            json!({
                "name": l.name, "weight": l.weight, "configured_weight": l.configured_weight,
                "paused": l.paused, "active_runs": l.active_runs, "queued": l.queued,
                "versions": {"agent": v.agent, "model": v.model, "prompt": v.prompt, "policy": v.policy,
                    "tool_schema": v.tool_schema, "baton_build": v.baton_build},
            })
        })
        .collect();
    json!({ "lanes": lanes })
}

/// `<lane> weight <w> (<share> %, configured <w>)[  PAUSED]  active <n>  queued <n>  <versions>`
fn text_list(resp: &ListLanesResponse) -> String {
    let total: u32 = resp.lanes.iter().map(|l| l.weight).sum();
    let mut lines = Vec::new();
    for l in &resp.lanes {
        let share = if total == 0 { 0.0 } else { f64::from(l.weight) * 100.0 / f64::from(total) };
        let v = l.versions.clone().unwrap_or_default();
        let versions: Vec<String> = [
            ("agent", v.agent),
            ("model", v.model),
            ("prompt", v.prompt),
            ("policy", v.policy),
            ("tools", v.tool_schema),
            ("build", v.baton_build),
        ]
        .into_iter()
        .filter(|(_, x)| !x.is_empty())
        .map(|(k, x)| format!("{k}={x}"))
        .collect();
        lines.push(format!(
            "{:<12} weight {:>5} ({share:>5.1} %, configured {}){}  active {:>6}  queued {:>6}  {}",
            l.name,
            l.weight,
            l.configured_weight,
            if l.paused { "  PAUSED" } else { "" },
            l.active_runs,
            l.queued,
            versions.join(" ")
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::parse_weights;

    #[test]
    fn weights_parse_from_pairs_and_bad_ones_say_why() {
        let w = parse_weights(&["main=95".into(), "canary=5".into()]).unwrap();
        assert_eq!((w["main"], w["canary"]), (95, 5));
        assert!(parse_weights(&["main".into()]).unwrap_err().to_string().contains("LANE=WEIGHT"));
        assert!(parse_weights(&["main=lots".into()]).unwrap_err().to_string().contains("whole number"));
    }
}
