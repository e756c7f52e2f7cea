//! Lanes and rollout over real processes: two lanes with their own worker groups and version
//! sets; a canary weight of 10 % sends 10 % ± 3 % of 1,000 runs to the canary lane, each stamped
//! with its lane's versions; a tenant, or an agent, with a route of its own goes where it says
//! while the others follow the fleet's; a rollback sends no new run to the canary while the runs
//! it holds finish there, never changing lane or version.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use baton_proto::v1::{
    GetRunRequest, ListLanesRequest, RunStatus, SetLaneSwitchRequest, SetLaneWeightsRequest, SubmitRunRequest,
};
use baton_testkit::runs::{echoes, watch_to_end};
use baton_testkit::{Stack, StackOptions};
use tonic::Code;

const WITHIN: Duration = Duration::from_secs(60);

const LANES: &str = r#"
[runs]
lanes = ["main", "canary"]

[lanes.main]
weight = 100
agent = "support-v1"
model = "m1"

[lanes.canary]
weight = 0
agent = "support-v2"
model = "m2"

[models.gpt]
base_url = "http://127.0.0.1:9/v1"
model = "gpt-test"
"#;

fn weights(pairs: &[(&str, u32)], reason: &str) -> SetLaneWeightsRequest {
    SetLaneWeightsRequest {
        weights: pairs.iter().map(|(l, w)| (l.to_string(), *w)).collect::<BTreeMap<_, _>>(),
        reset: false,
        actor: "release-bot".into(),
        reason: reason.into(),
        tenant: String::new(),
        agent: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_gets_its_share_and_a_rollback_lets_its_runs_finish_where_they_started() {
    let mut opts = StackOptions { config_toml: LANES.into(), ..Default::default() };
    opts.env.push(("BATON_SWITCHES_REFRESH_MS".into(), "100".into()));
    let mut stack = Stack::full("lanes", opts).await;
    stack.start_with("worker", &[("BATON_WORKER_LANE", "canary")]).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;

    // Configured: everything to main. Weights that leave no lane are refused.
    let lanes = admin.list_lanes(ListLanesRequest::default()).await.unwrap().into_inner().lanes;
    let by_name = |name: &str| lanes.iter().find(|l| l.name == name).cloned().unwrap();
    assert_eq!((by_name("main").weight, by_name("canary").weight), (100, 0));
    assert_eq!(by_name("canary").versions.unwrap().model, "m2");
    let e = admin.set_lane_weights(weights(&[("main", 0)], "oops")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = admin.set_lane_weights(weights(&[("blue", 5)], "typo")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // Canary at 10 %: 1,000 runs, 10 % ± 3 % of them on the canary lane.
    admin.set_lane_weights(weights(&[("main", 90), ("canary", 10)], "canary v2")).await.unwrap();
    let mut on = BTreeMap::<String, Vec<String>>::new();
    for _ in 0..1_000 {
        let req = SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() };
        let reply = client.submit_run(req).await.unwrap().into_inner();
        on.entry(reply.lane).or_default().push(reply.run_id);
    }
    let canary = on.get("canary").map_or(0, Vec::len);
    println!("{canary} of 1000 runs routed to the canary at a weight of 10 %");
    assert!((70..=130).contains(&canary), "{canary} of 1000 runs on the canary");
    assert_eq!(on.get("main").map_or(0, Vec::len) + canary, 1_000);
    // Each run carries its lane's version set, and runs on that lane's workers.
    for (lane, model) in [("main", "m1"), ("canary", "m2")] {
        let id = &on[lane][0];
        watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        let run = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 1 }).await.unwrap().into_inner();
        assert_eq!(run.status(), RunStatus::Succeeded);
        assert_eq!(run.lane, lane);
        assert_eq!(run.spec.as_ref().unwrap().versions.as_ref().unwrap().model, model);
        assert!(run.steps[0].worker.contains("worker"), "{:?}", run.steps[0]);
    }

    // A tenant's own route: every run of "beta" to the canary, the others unchanged.
    let mut beta_route = weights(&[("canary", 100)], "beta tries v2");
    beta_route.tenant = "beta".into();
    let lanes = admin.set_lane_weights(beta_route).await.unwrap().into_inner().lanes;
    let w: BTreeMap<_, _> = lanes.iter().map(|l| (l.name.clone(), l.weight)).collect();
    assert_eq!((w["main"], w["canary"]), (0, 100), "lanes a tenant route does not name get nothing");
    for _ in 0..20 {
        let mut req = tonic::Request::new(SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() });
        req.metadata_mut().insert("x-baton-tenant", "beta".parse().unwrap());
        assert_eq!(client.submit_run(req).await.unwrap().into_inner().lane, "canary");
    }
    let fleet = admin.list_lanes(ListLanesRequest::default()).await.unwrap().into_inner().lanes;
    assert_eq!(fleet.iter().find(|l| l.name == "canary").unwrap().weight, 10, "the fleet's route is unchanged");
    let mut reset = SetLaneWeightsRequest { reset: true, tenant: "beta".into(), ..weights(&[], "beta done") };
    reset.weights.clear();
    admin.set_lane_weights(reset).await.unwrap();

    // Rollback with canary runs still in flight (its lane paused so they are held there).
    let pause = |paused| SetLaneSwitchRequest {
        lane: "canary".into(),
        paused,
        actor: "release-bot".into(),
        reason: "hold".into(),
    };
    admin.set_lane_switch(pause(true)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut held = Vec::new();
    while held.len() < 3 {
        let req = SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() };
        let reply = client.submit_run(req).await.unwrap().into_inner();
        if reply.lane == "canary" {
            held.push(reply.run_id);
        }
    }
    admin.set_lane_weights(weights(&[("canary", 0)], "rollback: v2 errors")).await.unwrap();
    for _ in 0..200 {
        let req = SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() };
        let reply = client.submit_run(req).await.unwrap().into_inner();
        assert_eq!(reply.lane, "main", "a rolled-back lane takes no new run");
    }
    admin.set_lane_switch(pause(false)).await.unwrap();
    for id in &held {
        watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        let run = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 0 }).await.unwrap().into_inner();
        assert_eq!((run.status(), run.lane.as_str()), (RunStatus::Succeeded, "canary"), "pinned to its lane");
        assert_eq!(run.spec.unwrap().versions.unwrap().model, "m2", "its version never changes");
    }
    // Once its runs ended, the canary holds none.
    let deadline = std::time::Instant::now() + WITHIN;
    loop {
        let lanes = admin.list_lanes(ListLanesRequest::default()).await.unwrap().into_inner().lanes;
        let canary = lanes.iter().find(|l| l.name == "canary").unwrap();
        if canary.active_runs == 0 {
            assert_eq!(canary.weight, 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{canary:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // An agent's route: runs naming the model endpoint "gpt" go to the canary, a script run
    // still follows the fleet's route (all to main since the rollback).
    let mut gpt_route = weights(&[("canary", 100)], "gpt on v2");
    gpt_route.agent = "gpt".into();
    admin.set_lane_weights(gpt_route).await.unwrap();
    let model_run = baton_core::plan::model_spec("gpt", "say hi", &["echo"]);
    let req = SubmitRunRequest { spec: Some(model_run), idempotency_key: String::new() };
    assert_eq!(client.submit_run(req).await.unwrap().into_inner().lane, "canary");
    let req = SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() };
    assert_eq!(client.submit_run(req).await.unwrap().into_inner().lane, "main");
}
