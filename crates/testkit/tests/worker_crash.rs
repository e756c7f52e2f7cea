//! A worker SIGKILLed mid-run loses nothing: once a new worker starts, every run completes and
//! no step is committed twice (checked from each run's event history).
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
