//! Nothing grows without bound: 2,000 runs with a 5 s retention — plain, cancelled, waiting on a
//! timer, dead-lettered, with ledger effects and idempotency keys — and once they have ended and
//! expired, Redis holds the same keys as before them (the fleet's fixed keys) and its memory is
//! back near the idle baseline.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use baton_proto::v1::{CancelRunRequest, GetRunRequest, RetryPolicy, RunStatus, SubmitRunRequest};
use baton_testkit::runs::{script, wait_for_run};
use baton_testkit::{Stack, StackOptions};

/// The bytes each key takes (`MEMORY USAGE`).
async fn key_bytes(conn: &mut redis::aio::MultiplexedConnection, keys: &BTreeSet<String>) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for key in keys {
        let bytes: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(key).query_async(conn).await.unwrap();
        out.push((key.clone(), bytes.unwrap_or(0)));
    }
    out
}

async fn keys_and_memory(conn: &mut redis::aio::MultiplexedConnection) -> (BTreeSet<String>, u64) {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(conn).await.unwrap();
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await.unwrap();
    let used =
        info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (keys.into_iter().collect(), used)
}

/// Keys that differ in name from run to run but are one per fleet member, not per run.
fn fleet_shape(key: &str) -> String {
    if key.starts_with(&baton_store::keys::worker_runs("")) {
        "baton:worker-runs:<worker>".into()
    } else {
        key.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_runs_leave_no_key_behind_once_they_expire() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_RUNS_RETENTION_SECS".into(), "5".into()));
    opts.env.push(("BATON_RUNS_IDEMPOTENCY_TTL_SECS".into(), "5".into()));
    opts.env.push(("BATON_SCHEDULER_RETRY_TIERS_MS".into(), "[200, 1000]".into()));
    let stack = Stack::full("key-expiry", opts).await;
    let mut client = stack.client().await;
    let redis = redis::Client::open(stack.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    // The idle baseline: the fleet's own keys once a first run has come and gone.
    let first = client
        .submit_run(SubmitRunRequest { spec: Some(script(&[("echo", "{}")])), idempotency_key: String::new() })
        .await
        .unwrap()
        .into_inner()
        .run_id;
    wait_for_run(&mut client, &first, Duration::from_secs(30), |r| r.status() == RunStatus::Succeeded).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (baseline, baseline_memory) = keys_and_memory(&mut conn).await;
    let baseline_bytes: u64 = key_bytes(&mut conn, &baseline).await.iter().map(|(_, b)| b).sum();

    // 2,000 runs of every kind, 16 submitters at a time.
    let mut tasks = Vec::new();
    for t in 0..16 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..125 {
                let n = t * 125 + i;
                let mut spec = match n % 5 {
                    0 => script(&[("echo", "{}"), ("ledger", "{}")]),
                    1 => script(&[("wait", r#"{"ms":300}"#), ("echo", "{}")]),
                    2 => script(&[("flaky", r#"{"fail_rate":1.0}"#)]),
                    3 => script(&[("sleep", r#"{"ms":50}"#), ("echo", "{}")]),
                    _ => script(&[("wait", r#"{"ms":600000}"#)]),
                };
                spec.retry = Some(RetryPolicy { max_attempts: 1, initial_backoff_ms: 100, max_backoff_ms: 1_000 });
                let key = if n % 2 == 0 { format!("expiry-{n}") } else { String::new() };
                let req = SubmitRunRequest { spec: Some(spec), idempotency_key: key };
                ids.push((n, client.submit_run(req).await.unwrap().into_inner().run_id));
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    // The long waits are cancelled; everything else ends on its own.
    for (n, id) in &ids {
        let id = id.clone();
        if n % 5 == 4 {
            wait_for_run(&mut client, &id, Duration::from_secs(60), |r| r.status() == RunStatus::Waiting)
                .await
                .unwrap();
            client.cancel_run(CancelRunRequest { run_id: id.clone(), reason: "expiry test".into() }).await.unwrap();
        }
    }
    // Every run ends (and, 5 s later, is gone).
    let deadline = Instant::now() + Duration::from_secs(120);
    for (_, id) in &ids {
        loop {
            match client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 0 }).await {
                Ok(run) if baton_core::status::is_terminal(run.get_ref().status()) => break,
                Err(e) if e.code() == tonic::Code::NotFound => break,
                other => {
                    assert!(Instant::now() < deadline, "{id} did not end: {other:?}\n{}", stack.logs());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    // After retention and a few sweeps, the same keys as before.
    let baseline_shape: BTreeSet<String> = baseline.iter().map(|k| fleet_shape(k)).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (after, memory) = loop {
        let (keys, memory) = keys_and_memory(&mut conn).await;
        let extra: Vec<&String> = keys.iter().filter(|k| !baseline_shape.contains(&fleet_shape(k))).collect();
        if extra.is_empty() {
            break (keys, memory);
        }
        assert!(
            Instant::now() < deadline,
            "{} keys outlived their runs, e.g. {:?}",
            extra.len(),
            extra.iter().take(20).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(after.len() <= baseline.len() + 2, "{after:?} vs {baseline:?}");
    // The fleet's own keys hold what they held (a fixed set, not a record per run), and Redis's
    // memory is back near idle (what remains is the allocator's and the script cache's).
    let sizes = key_bytes(&mut conn, &after).await;
    let after_bytes: u64 = sizes.iter().map(|(_, b)| b).sum();
    let grown = memory.saturating_sub(baseline_memory);
    println!(
        "keys: {} idle, {} after; their bytes: {baseline_bytes} idle, {after_bytes} after; used_memory: \
         {baseline_memory} B idle, {memory} B after 2,000 expired runs (+{grown} B)",
        baseline.len(),
        after.len()
    );
    assert!(after_bytes < baseline_bytes + 64 * 1024, "fleet keys grew: {sizes:?}");
    assert!(grown < 2 * 1024 * 1024, "Redis kept {grown} bytes more than when idle");
}
