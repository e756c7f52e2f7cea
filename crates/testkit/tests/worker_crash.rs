//! A worker SIGKILLed mid-run loses nothing: once a new worker starts, every run completes and
//! no step is committed twice (checked from each run's event history); a dead worker is noticed
//! by its liveness, not its leases, so its runs resume long before the leases expire; and a
//! worker restarted under its name takes its runs back without waiting for either.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use baton_proto::v1::{EventKind, RunStatus};
use baton_testkit::runs::{check_history, script, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_runs_complete_on_a_new_worker_without_double_commits() {
    let mut stack = Stack::full("worker-crash", StackOptions::default()).await;
    let mut client = stack.client().await;
    let sleepy = [("sleep", r#"{"ms":400}"#); 6];
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(submit(&mut client, script(&sleepy), "").await);
    }
    // Let every run get a step or two in, then kill the only worker mid-step.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let worker = stack.find("worker");
    stack.services[worker].kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.start("worker").await;

    let mut runs_on_two_workers = 0;
    for id in &ids {
        let events = watch_to_end(&mut client, id, Duration::from_secs(90))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!(check_history(&events), Ok(6), "run {id}: {events:?}");
        assert_eq!(events.last().unwrap().status(), RunStatus::Succeeded);
        let workers: HashSet<_> =
            events.iter().filter(|e| e.kind() == EventKind::StepCompleted).map(|e| e.worker.clone()).collect();
        if workers.len() > 1 {
            runs_on_two_workers += 1;
        }
    }
    assert!(runs_on_two_workers > 0, "the kill did not interrupt any run");

    let metrics = stack.metrics(stack.find("reaper")).await;
    assert!(metrics.contains("baton_reaper_redispatched_total"), "reaper recovered nothing:\n{metrics}");
}

/// With a production lease (30 s), a SIGKILLed worker's runs do not wait for it: the worker
/// stops beating, the reaper breaks its leases and re-dispatches to the surviving worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_runs_resume_long_before_its_leases_expire() {
    let mut opts = StackOptions::default();
    opts.env.retain(|(k, _)| !k.starts_with("BATON_WORKER_"));
    opts.env.extend([
        ("BATON_WORKER_LEASE_TTL_MS".to_string(), "30000".to_string()),
        ("BATON_WORKER_HEARTBEAT_MS".to_string(), "10000".to_string()),
        ("BATON_WORKER_LIVENESS_TTL_MS".to_string(), "3000".to_string()),
    ]);
    let mut stack = Stack::full("liveness", opts).await;
    stack.start("worker").await;
    let mut client = stack.client().await;
    let id = submit(&mut client, script(&[("echo", "{}"), ("sleep", r#"{"ms":60000}"#), ("echo", "{}")]), "").await;
    let store = stack.store();
    // Find the worker holding the run from its lease, and kill it mid-sleep.
    let mut holder = None;
    for _ in 0..200 {
        holder = store.load_run(&id).await.unwrap().filter(|s| s.next_step == 1).and(lease_owner(&stack, &id).await);
        if holder.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let holder = holder.expect("a worker holds the run in its sleep step");
    let victim = (0..stack.services.len()).find(|i| stack.instance_id(*i).as_deref() == Some(holder.as_str())).unwrap();
    let killed_at = std::time::Instant::now();
    stack.services[victim].kill().await;
    // The sleep step is re-run by the survivor from the start (same key); the run cannot finish
    // before then, so wait for the survivor to hold it.
    let mut taken_over = false;
    for _ in 0..300 {
        if lease_owner(&stack, &id).await.is_some_and(|o| o != holder) {
            taken_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed_at.elapsed();
    assert!(taken_over, "nobody took the run over\n{}", stack.logs());
    assert!(took < Duration::from_secs(20), "took over after {took:?}: it waited for the 30 s lease");
    let metrics = stack.metrics(stack.find("reaper")).await;
    assert!(metrics.contains("baton_reaper_leases_broken_total 1"), "{metrics}");
}

/// A worker restarted under its name (what a pod restart is) takes its runs back without waiting
/// for its liveness TTL or its leases (run and partition leases), all a minute or more here: the
/// new instance declares the old one dead and takes its partitions as it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_under_its_name_takes_its_runs_back_at_once() {
    let mut opts = StackOptions::default();
    opts.env.retain(|(k, _)| !k.starts_with("BATON_WORKER_") && !k.starts_with("BATON_KAFKA_"));
    opts.env.extend(
        [
            ("BATON_WORKER_NAME", "worker-a"),
            ("BATON_WORKER_LEASE_TTL_MS", "120000"),
            ("BATON_WORKER_HEARTBEAT_MS", "10000"),
            ("BATON_WORKER_LIVENESS_TTL_MS", "60000"),
            ("BATON_KAFKA_SESSION_TIMEOUT_MS", "60000"),
            ("BATON_KAFKA_MAX_POLL_INTERVAL_MS", "60000"),
            ("BATON_KAFKA_PARTITIONS", "4"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let mut stack = Stack::full("named-restart", opts).await;
    let mut client = stack.client().await;
    let steps = [("echo", "{}"), ("sleep", r#"{"ms":1500}"#), ("sleep", r#"{"ms":1500}"#), ("echo", "{}")];
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(submit(&mut client, script(&steps), "").await);
    }
    let store = stack.store();
    // Kill the only worker once every run is inside its first sleep.
    for _ in 0..200 {
        let mut mid = 0;
        for id in &ids {
            mid += usize::from(store.load_run(id).await.unwrap().is_some_and(|s| s.next_step == 1));
        }
        if mid == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let worker = stack.find("worker");
    stack.services[worker].kill().await;
    let killed_at = std::time::Instant::now();
    let replacement = stack.start("worker").await;
    // Every run commits its next step; with the earlier instance waited out, none could for a
    // minute (liveness and partition leases 60 s, run leases 120 s).
    for id in &ids {
        let mut stepped = false;
        while killed_at.elapsed() < Duration::from_secs(40) && !stepped {
            stepped = store.load_run(id).await.unwrap().is_some_and(|s| s.next_step >= 2);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(stepped, "run {id} did not step again within 40 s of the kill\n{}", stack.logs());
    }
    println!("every interrupted run stepped again {:?} after the kill", killed_at.elapsed());
    for id in &ids {
        let events = watch_to_end(&mut client, id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(check_history(&events), Ok(4), "run {id}: {events:?}");
        assert_eq!(events.last().unwrap().status(), RunStatus::Succeeded);
    }
    let metrics = stack.metrics(replacement).await;
    assert!(metrics.contains("baton_worker_predecessors_taken_over_total 1"), "{metrics}");
    let metrics = stack.metrics(stack.find("reaper")).await;
    assert!(metrics.contains("baton_reaper_dead_workers_total 1"), "{metrics}");
}

/// The worker id in the run's lease (`<worker>/<fence>`), if one holds it.
async fn lease_owner(stack: &Stack, run_id: &str) -> Option<String> {
    let client = redis::Client::open(stack.redis.url()).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let lease: Option<String> =
        redis::cmd("GET").arg(format!("baton:lease:{{{run_id}}}")).query_async(&mut conn).await.ok()?;
    lease.and_then(|l| l.rsplit_once('/').map(|(w, _)| w.to_string()))
}
