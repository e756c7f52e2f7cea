//! Liveness on the fleet's clock: two workers whose host clocks are 5 s behind and 5 s ahead
//! (libfaketime, Debian `faketime`) keep their runs under load — no lease broken, no step run
//! twice — and a SIGKILLed one is still declared dead (its leases broken) within 5 s.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use baton_proto::v1::RunStatus;
use baton_testkit::runs::{check_history, final_status, script, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};

const WITHIN: Duration = Duration::from_secs(90);

fn libfaketime() -> String {
    let found = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    found.expect("libfaketime not found: run scripts/install-deps.sh (Debian package faketime)").to_string()
}

/// The environment that runs a process with its clock `offset` off ("-5s", "+5s"). The
/// monotonic clock is shifted by the same constant, which changes nothing a process can see
/// (only differences of it mean anything) but keeps libfaketime's waits right: with the
/// monotonic clock left true, its `pthread_cond_timedwait` on a monotonic condition variable
/// returns at once, and librdkafka's threads spin.
fn skewed(offset: &str) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), libfaketime()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
    ]
}

/// A run of ten short steps, two of them audited effects.
fn run_spec() -> baton_proto::v1::RunSpec {
    let mut steps = vec![("sleep", r#"{"ms":150}"#); 10];
    steps[3] = ("ledger", "{}");
    steps[8] = ("ledger", "{}");
    script(&steps)
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_with_skewed_clocks_keep_their_runs_and_a_dead_one_loses_them_in_seconds() {
    // Production-like leases (30 s): only liveness, not lease expiry, can move a run in seconds.
    let mut opts = StackOptions::default();
    opts.env.retain(|(k, _)| k != "BATON_WORKER_LEASE_TTL_MS" && k != "BATON_WORKER_HEARTBEAT_MS");
    opts.env.push(("BATON_WORKER_LEASE_TTL_MS".into(), "30000".into()));
    opts.env.push(("BATON_WORKER_HEARTBEAT_MS".into(), "10000".into()));
    let mut stack = Stack::infra("clock-skew", opts).await;
    stack.start_gateway().await;
    stack.start("scheduler").await;
    let reaper = stack.start("reaper").await;
    let (behind, ahead) = (skewed("-5s"), skewed("+5s"));
    let slow = stack.start_alive("worker", &refs(&behind)).await;
    let fast = stack.start_alive("worker", &refs(&ahead)).await;
    stack.wait_for_partitions("main", &[slow, fast]).await;
    let mut client = stack.client().await;

    // Load across both workers for a while.
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(submit(&mut client, run_spec(), "").await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for id in &ids {
        let events = watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!(final_status(&events), RunStatus::Succeeded, "{events:?}");
        assert_eq!(check_history(&events), Ok(10));
    }
    let metrics = stack.metrics(reaper).await;
    assert_eq!(counter(&metrics, "baton_reaper_dead_workers_total"), 0.0, "a live worker was declared dead");
    assert_eq!(counter(&metrics, "baton_reaper_leases_broken_total"), 0.0, "a live worker's lease was broken");
    assert_no_step_ran_twice(&stack, &ids).await;
    let mut steps = 0.0;
    for i in [slow, fast] {
        steps += counter(&stack.metrics(i).await, "baton_worker_steps_total");
    }
    assert!(steps > 0.0, "the skewed workers took none of the load\n{}", stack.logs());

    // The worker whose clock is 5 s ahead dies: the reaper still declares it dead within
    // seconds (judging by its own clock it would wait 5 s more). Its runs move as any dead
    // worker's do (tests/worker_crash.rs).
    let dead_before = counter(&stack.metrics(reaper).await, "baton_reaper_dead_workers_total");
    let started = Instant::now();
    stack.services[fast].kill().await;
    let declared = loop {
        if counter(&stack.metrics(reaper).await, "baton_reaper_dead_workers_total") > dead_before {
            break started.elapsed();
        }
        assert!(started.elapsed() < WITHIN, "the dead worker was never declared dead\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("the worker 5 s ahead was declared dead {declared:?} after its SIGKILL");
    assert!(declared < Duration::from_secs(5), "declared dead only after {declared:?}");
}

/// Every `ledger` step's effect was recorded once: no step ran again after a broken lease.
async fn assert_no_step_ran_twice(stack: &Stack, ids: &[String]) {
    let store = stack.store();
    for id in ids {
        for step in [3, 8] {
            let calls = store.ledger_calls(&format!("{id}:{step}")).await.unwrap();
            assert_eq!(calls.len(), 1, "{id}:{step} ran {} times", calls.len());
        }
    }
}
