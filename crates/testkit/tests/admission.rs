//! Admission control over real processes: a tenant over its submit rate is refused while another
//! tenant is not slowed; a lane whose queue (consumer lag, read from the broker by the reaper)
//! is over its limit refuses new runs until it drains — a high-priority run still gets in, a
//! low-priority one is refused first; a lane's cap on runs not yet ended. Every refusal is
//! RESOURCE_EXHAUSTED naming the limit, with a retry-after hint, and stores nothing; a retry of
//! an admitted submit (same idempotency key) is answered with its run, whatever the limits say.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{ListRunsRequest, Priority, RunSpec, SetLaneSwitchRequest, SetLimitRequest, SubmitRunRequest};
use baton_testkit::runs::{as_tenant, echoes, watch_to_end};
use baton_testkit::{Stack, StackOptions};
use tonic::transport::Channel;
use tonic::Code;

const WITHIN: Duration = Duration::from_secs(60);

async fn try_submit(
    client: &mut RunServiceClient<Channel>,
    tenant: &str,
    spec: RunSpec,
) -> Result<String, tonic::Status> {
    let req = SubmitRunRequest { spec: Some(spec), idempotency_key: String::new() };
    client.submit_run(as_tenant(req, tenant)).await.map(|r| r.into_inner().run_id)
}

async fn runs_of(client: &mut RunServiceClient<Channel>, tenant: &str) -> usize {
    let req = ListRunsRequest { status: 0, page_size: 500, page_token: String::new() };
    client.list_runs(as_tenant(req, tenant)).await.unwrap().into_inner().runs.len()
}

fn limit(limit: &str, target: &str, value: u64) -> SetLimitRequest {
    SetLimitRequest { limit: limit.into(), target: target.into(), value, actor: "ops".into(), reason: "test".into() }
}

/// The refusal's limit is named and a retry hint given.
fn assert_refused(e: &tonic::Status, limit: &str) {
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains(limit), "{e:?}");
    let hint = e.metadata().get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    assert!(hint.is_some_and(|ms| ms > 0), "no retry-after-ms hint: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_is_refused_and_another_is_not_slowed() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_SWITCHES_REFRESH_MS".into(), "100".into()));
    let stack = Stack::full("rate", opts).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;
    let e = admin.set_limit(limit("tenant.speed", "a", 1)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "an unknown limit is named: {e:?}");
    admin.set_limit(limit("tenant.submit_rate", "a", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Tenant a: one submit a second, a burst of one. Ten at once: one in, nine refused.
    let mut refused = 0;
    for _ in 0..10 {
        match try_submit(&mut client, "a", echoes(1)).await {
            Ok(_) => {}
            Err(e) => {
                assert_refused(&e, "tenant.submit_rate");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 9, "a burst of one at 1/s");
    assert_eq!(runs_of(&mut client, "a").await, 1, "a refused submit stores nothing");
    // Tenant b has no limit and is not slowed by a's.
    for _ in 0..10 {
        try_submit(&mut client, "b", echoes(1)).await.unwrap();
    }
    assert_eq!(runs_of(&mut client, "b").await, 10);
    // The bucket refills: a gets in again after a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let keyed = |key: &str| as_tenant(SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: key.into() }, "a");
    let first = client.submit_run(keyed("order-1")).await.unwrap().into_inner();
    assert!(!first.deduplicated);
    // A client retrying that submit at once (its answer was lost) gets its run, although the
    // tenant's bucket is empty again: the key is looked up before admission.
    let retry = client.submit_run(keyed("order-1")).await.unwrap_or_else(|e| panic!("the retry was refused: {e:?}"));
    let retry = retry.into_inner();
    assert_eq!((retry.run_id.as_str(), retry.deduplicated), (first.run_id.as_str(), true));
    // A new key is a new run, and the rate still holds it.
    let e = client.submit_run(keyed("order-2")).await.unwrap_err();
    assert_refused(&e, "tenant.submit_rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_over_its_queue_limit_refuses_until_it_drains_and_caps_active_runs() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_SWITCHES_REFRESH_MS".into(), "100".into()));
    opts.env.push(("BATON_REAPER_LAG_SAMPLE_MS".into(), "200".into()));
    let stack = Stack::full("queue", opts).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;
    let pause =
        |paused| SetLaneSwitchRequest { lane: "main".into(), paused, actor: "ops".into(), reason: "test".into() };
    admin.set_limit(limit("lane.max_queued", "main", 4)).await.unwrap();
    admin.set_lane_switch(pause(true)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The paused lane's tasks wait on its topic: the lag grows until submits are refused.
    let mut admitted = Vec::new();
    let deadline = Instant::now() + WITHIN;
    let refusal = loop {
        assert!(Instant::now() < deadline, "the lane never refused ({} admitted)\n{}", admitted.len(), stack.logs());
        match try_submit(&mut client, "default", echoes(1)).await {
            Ok(id) => admitted.push(id),
            Err(e) => break e,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_refused(&refusal, "lane.max_queued");
    assert!(admitted.len() >= 4, "refused at a lag of 4, after {} runs", admitted.len());
    let stored = runs_of(&mut client, "default").await;
    assert_eq!(stored, admitted.len(), "the refused submit stored nothing");
    // Priority classes: a low-priority run is refused too; a high-priority one gets in.
    let low = RunSpec { priority: Priority::Low as i32, ..echoes(1) };
    assert_refused(&try_submit(&mut client, "default", low).await.unwrap_err(), "lane.max_queued");
    let high = RunSpec { priority: Priority::High as i32, ..echoes(1) };
    admitted.push(try_submit(&mut client, "default", high).await.unwrap());

    // Resumed, the lane drains, the refusal clears, and every admitted run completes.
    admin.set_lane_switch(pause(false)).await.unwrap();
    for id in &admitted {
        watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    }
    let deadline = Instant::now() + WITHIN;
    let after = loop {
        match try_submit(&mut client, "default", echoes(1)).await {
            Ok(id) => break id,
            Err(e) => assert_refused(&e, "lane.max_queued"),
        }
        assert!(Instant::now() < deadline, "the refusal never cleared\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    watch_to_end(&mut client, &after, WITHIN).await.unwrap();

    // A lane's cap on runs not yet ended: with the lane paused, two get in, the third is refused.
    admin.set_limit(limit("lane.max_queued", "main", 0)).await.unwrap();
    admin.set_limit(limit("lane.max_active_runs", "main", 2)).await.unwrap();
    admin.set_lane_switch(pause(true)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = runs_of(&mut client, "default").await;
    let first = try_submit(&mut client, "default", echoes(1)).await.unwrap();
    let second = try_submit(&mut client, "default", echoes(1)).await.unwrap();
    assert_refused(&try_submit(&mut client, "default", echoes(1)).await.unwrap_err(), "lane.max_active_runs");
    assert_eq!(runs_of(&mut client, "default").await, before + 2);
    admin.set_lane_switch(pause(false)).await.unwrap();
    for id in [first, second] {
        watch_to_end(&mut client, &id, WITHIN).await.unwrap();
    }
    // Ended runs no longer count: the lane admits again.
    try_submit(&mut client, "default", echoes(1)).await.unwrap();
}
