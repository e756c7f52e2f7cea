//! Baton on a real Redis Cluster (3 primaries, a replica each, on loopback): the core scenarios
//! — runs complete, a worker SIGKILLed mid-run, retries, a dead letter and its requeue, timers,
//! an approval, a cancel, admission caps — and, with writes acknowledged by a replica, a
//! primary SIGKILLed mid-load and failed over by the cluster: nothing lost, no commit under a
//! stale fence, no effect repeated. Run keys spread over the primaries.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use baton_proto::v1::{
    CancelRunRequest, ListDeadLettersRequest, RequeueDeadLetterRequest, RetryPolicy, RunStatus, SetLimitRequest,
};
use baton_testkit::runs::{
    approve, check_history, echoes, final_status, require_approval, script, submit, wait_for_run, wait_for_status,
    watch_to_end,
};
use baton_testkit::{now_ms, Stack, StackOptions};

const WITHIN: Duration = Duration::from_secs(60);

fn cluster_options() -> StackOptions {
    let mut opts = StackOptions { redis_cluster: true, ..StackOptions::default() };
    opts.env.push(("BATON_SCHEDULER_RETRY_TIERS_MS".into(), "[200, 1000]".into()));
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_scenarios_run_on_a_redis_cluster() {
    let mut stack = Stack::full("cluster-core", cluster_options()).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;

    // Runs complete, their steps in order.
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(submit(&mut client, echoes(5), "").await);
    }
    for id in &ids {
        let events = watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!((final_status(&events), check_history(&events)), (RunStatus::Succeeded, Ok(5)));
    }

    // A worker SIGKILLed mid-run: a new one finishes its runs, each step once.
    let long: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(submit(&mut client, script(&[("sleep", r#"{"ms":300}"#); 12]), "").await);
        }
        v
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let worker = stack.find("worker");
    stack.services[worker].kill().await;
    stack.start("worker").await;
    for id in &long {
        let events = watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!((final_status(&events), check_history(&events)), (RunStatus::Succeeded, Ok(12)));
    }

    // Retries, then a dead letter, then its requeue.
    let outage_ends = now_ms() + 3_000;
    let mut spec = script(&[("flaky", &format!(r#"{{"fail_until_ms":{outage_ends}}}"#)), ("echo", "{}")]);
    spec.retry = Some(RetryPolicy { max_attempts: 2, initial_backoff_ms: 100, max_backoff_ms: 1_000 });
    let dead = submit(&mut client, spec, "").await;
    wait_for_status(&mut client, &dead, RunStatus::DeadLettered, WITHIN).await.unwrap();
    let letters = admin.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner();
    assert!(letters.dead_letters.iter().any(|l| l.run_id == dead), "the letter is listed");
    tokio::time::sleep(Duration::from_millis((outage_ends - now_ms()).max(0) as u64 + 100)).await;
    admin.requeue_dead_letter(RequeueDeadLetterRequest { run_id: dead.clone() }).await.unwrap();
    wait_for_status(&mut client, &dead, RunStatus::Succeeded, WITHIN).await.unwrap();

    // A timer wakes its run; a cancel ends a waiting one.
    let timed = submit(&mut client, script(&[("wait", r#"{"ms":800}"#), ("echo", "{}")]), "").await;
    let parked = submit(&mut client, script(&[("wait", r#"{"ms":600000}"#), ("echo", "{}")]), "").await;
    wait_for_status(&mut client, &timed, RunStatus::Succeeded, WITHIN).await.unwrap();
    wait_for_status(&mut client, &parked, RunStatus::Waiting, WITHIN).await.unwrap();
    let cancelled = client.cancel_run(CancelRunRequest { run_id: parked.clone(), reason: "c".into() }).await.unwrap();
    assert_eq!(cancelled.into_inner().status(), RunStatus::Cancelled);

    // An approval: an operator makes the ledger need one; granted, the call runs once.
    require_approval(&mut admin, "ledger").await;
    let gated = submit(&mut client, script(&[("ledger", "{}")]), "").await;
    let run = wait_for_run(&mut client, &gated, WITHIN, |r| r.wait_reason == "approval").await.unwrap();
    let approval = run.pending.unwrap().approval.unwrap();
    client.resolve_approval(approve(&gated, &approval, "ops", "")).await.unwrap();
    wait_for_status(&mut client, &gated, RunStatus::Succeeded, WITHIN).await.unwrap();
    assert_eq!(stack.store().ledger_calls(&format!("{gated}:0")).await.unwrap().len(), 1);

    // Admission: a tenant capped at one run not ended is refused a second.
    admin
        .set_limit(SetLimitRequest {
            limit: "tenant.max_active_runs".into(),
            target: "capped".into(),
            value: 1,
            actor: "ops".into(),
            reason: "cluster test".into(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = baton_testkit::runs::as_tenant(
        baton_proto::v1::SubmitRunRequest {
            spec: Some(script(&[("wait", r#"{"ms":600000}"#)])),
            idempotency_key: String::new(),
        },
        "capped",
    );
    client.submit_run(first).await.unwrap();
    let second = baton_testkit::runs::as_tenant(
        baton_proto::v1::SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() },
        "capped",
    );
    let refused = client.submit_run(second).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_spread_over_the_primaries() {
    let stack = Stack::full("cluster-spread", cluster_options()).await;
    let client = stack.client().await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..250 {
                ids.push(submit(&mut client, echoes(1), "").await);
            }
            ids
        }));
        let _ = t;
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let mut client = client.clone();
    for id in ids.iter().step_by(50) {
        wait_for_status(&mut client, id, RunStatus::Succeeded, WITHIN).await.unwrap();
    }
    let cluster = stack.cluster.as_ref().unwrap();
    let per_primary = cluster.keys_per_primary().await;
    let total: u64 = per_primary.iter().map(|(_, n)| n).sum();
    println!("2,000 runs in {:?}: keys per primary {per_primary:?}", started.elapsed());
    assert_eq!(per_primary.len(), 3);
    assert!(total >= 2_000 * 4, "the runs' keys: {total}");
    for (port, keys) in &per_primary {
        assert!(*keys * 2 <= total, "primary {port} holds {keys} of {total} keys");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_load_loses_nothing_when_writes_wait_for_a_replica() {
    use baton_testkit::chaos::{passed, run, ChaosConfig};
    let report = run(ChaosConfig {
        runs: 40,
        submit_per_sec: 4,
        workers: 2,
        kill_every: Duration::from_secs(3),
        kill_control_plane: false,
        restart_infra: false,
        flaky_rate: 0.2,
        settle: Duration::from_secs(120),
        long_runs: false,
        races: false,
        cluster_replicas_acked: Some(1),
        kill_redis_primary: true,
    })
    .await;
    println!("{}", report.render());
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert!(report.failover_ms.is_some(), "no primary was killed");
    assert_eq!(report.lost, 0, "lost runs: {:?}", report.history_problems);
    assert!(report.history_problems.is_empty(), "{:#?}", report.history_problems);
    assert_eq!(report.duplicates, 0, "ledger effects re-executed after their commit");
    assert!(report.events_missing.is_empty(), "{:?}", report.events_missing);
    assert!(passed(&report));
}

/// The listings sweep's scan finds listing keys on every primary: a `SCAN` cursor means
/// something only to the node that gave it, so the scan walks the primaries in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listings_scan_walks_every_primary() {
    let dir = baton_testkit::TempDir::new("cluster-scan");
    let cluster = baton_testkit::cluster::RedisCluster::start(&dir, 3, 0).await;
    cluster.wait_until_ok(WITHIN).await;
    let urls = cluster.urls();
    let config = baton_config::Redis {
        url: urls[0].clone(),
        cluster: true,
        cluster_seeds: urls[1..].to_vec(),
        ..Default::default()
    };
    let store = baton_store::Store::new(&config).unwrap();
    let mut conn = store.conn().await.unwrap();
    let keys: Vec<String> = (0..60).map(|t| format!("baton:tenant-runs:t{t}")).collect();
    let mut primaries = std::collections::BTreeSet::new();
    for key in &keys {
        let () = redis::cmd("ZADD").arg(key).arg(1).arg("run-x").query_async(&mut conn).await.unwrap();
        primaries.insert(cluster.primary_of(key).await.unwrap());
    }
    assert_eq!(primaries.len(), 3, "the listings are spread over the primaries");
    let mut found = std::collections::BTreeSet::new();
    let mut at = baton_store::ListingScan::default();
    for _ in 0..1_000 {
        let (next, listed) = store.scan_listings(at, 10).await.unwrap();
        found.extend(listed);
        at = next;
        if at == baton_store::ListingScan::default() {
            break;
        }
    }
    assert_eq!(found, keys.into_iter().collect(), "one pass finds every listing");
}
