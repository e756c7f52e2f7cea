//! Graceful drain over real processes: SIGTERM mid-step turns readiness off, and when the grace
//! runs out the worker releases its lease and re-dispatches the step, so another worker takes it
//! over at once instead of after the (here, one minute) lease expiry.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use baton_proto::v1::{EventKind, RunStatus};
use baton_testkit::runs::{check_history, final_status, script, submit, wait_for_status, watch_to_end};
use baton_testkit::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_step_hands_the_run_to_another_worker_before_lease_expiry() {
    let mut opts = StackOptions::default();
    opts.env.retain(|(k, _)| !k.starts_with("BATON_WORKER_"));
    opts.env.extend([
        ("BATON_WORKER_LEASE_TTL_MS".to_string(), "60000".to_string()),
        ("BATON_WORKER_HEARTBEAT_MS".to_string(), "2000".to_string()),
        ("BATON_WORKER_DRAIN_GRACE_MS".to_string(), "1000".to_string()),
    ]);
    let mut stack = Stack::full("drain", opts).await;
    let mut client = stack.client().await;
    let first = stack.find("worker");
    let first_id = stack.instance_id(first).expect("worker id in log");

    let id = submit(&mut client, script(&[("echo", "{}"), ("sleep", r#"{"ms":4000}"#), ("echo", "{}")]), "").await;
    wait_for_status(&mut client, &id, RunStatus::Running, Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await; // inside the 4 s sleep
    let second = stack.start("worker").await;
    let second_id = stack.instance_id(second).expect("worker id in log");

    let terminated_at = Instant::now();
    let exit = stack.services[first].terminate(Duration::from_secs(20)).await.expect("worker exits after its drain");
    assert!(exit.success(), "drained worker exit status: {exit:?}");
    let log = stack.services[first].log_text();
    assert!(log.contains("run handed back on drain"), "{log}");

    let events = watch_to_end(&mut client, &id, Duration::from_secs(40))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    let took = terminated_at.elapsed();
    assert_eq!(final_status(&events), RunStatus::Succeeded);
    assert_eq!(check_history(&events), Ok(3));
    let sleep_by: HashSet<_> = events
        .iter()
        .filter(|e| e.kind() == EventKind::StepCompleted && e.step == 1)
        .map(|e| e.worker.clone())
        .collect();
    assert_eq!(sleep_by, HashSet::from([second_id.clone()]), "the interrupted step was redone by the second worker");
    assert!(events.iter().any(|e| e.worker == first_id), "the first worker did run step 0");
    assert!(took < Duration::from_secs(45), "hand-over took {took:?}: it waited for the 60 s lease");
    let ops = stack.metrics(second).await;
    assert!(ops.contains("baton_worker_steps_total"), "{ops}");
}
