//! Stopping runs over real processes: cancel reaches queued, waiting and in-flight runs (with
//! the canceller and reason recorded); deadlines end runs `timed_out`; step budgets end them
//! `budget_exhausted`; cancelling a finished run changes nothing.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_proto::v1::{Budget, CancelRunRequest, EventKind, GetRunRequest, RunStatus};
use baton_testkit::runs::{check_history, echoes, final_status, script, submit, wait_for_status, watch_to_end};
use baton_testkit::{Stack, StackOptions};
use tonic::Code;

fn cancel(run_id: &str, reason: &str) -> CancelRunRequest {
    CancelRunRequest { run_id: run_id.to_string(), reason: reason.to_string() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_queued_waiting_and_in_flight_runs() {
    // No worker yet: the first run stays queued. Production-like lease timing: a cancel must
    // not wait for the 10 s lease renewal to reach a running tool.
    let mut opts = StackOptions::default();
    opts.env.retain(|(k, _)| k != "BATON_WORKER_LEASE_TTL_MS" && k != "BATON_WORKER_HEARTBEAT_MS");
    opts.env.push(("BATON_WORKER_LEASE_TTL_MS".into(), "30000".into()));
    opts.env.push(("BATON_WORKER_HEARTBEAT_MS".into(), "10000".into()));
    let mut stack = Stack::infra("cancel", opts).await;
    stack.start_gateway().await;
    let mut client = stack.client().await;
    let queued = submit(&mut client, echoes(2), "").await;
    let reply = client.cancel_run(cancel(&queued, "changed my mind")).await.unwrap().into_inner();
    assert_eq!(reply.status(), RunStatus::Cancelled);

    stack.start("worker").await;
    stack.start("scheduler").await;
    stack.start("reaper").await;

    // Waiting on a timer.
    let waiting = submit(&mut client, script(&[("echo", "{}"), ("wait", r#"{"ms":60000}"#), ("echo", "{}")]), "").await;
    wait_for_status(&mut client, &waiting, RunStatus::Waiting, Duration::from_secs(30)).await.unwrap();
    let reply = client.cancel_run(cancel(&waiting, "no longer needed")).await.unwrap().into_inner();
    assert_eq!(reply.status(), RunStatus::Cancelled);

    // In flight: a long sleep is interrupted through the heartbeat.
    let busy = submit(&mut client, script(&[("sleep", r#"{"ms":60000}"#), ("echo", "{}")]), "").await;
    wait_for_status(&mut client, &busy, RunStatus::Running, Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = baton_testkit::now_ms();
    let reply = client.cancel_run(cancel(&busy, "stop the sleep")).await.unwrap().into_inner();
    assert_eq!(reply.status(), RunStatus::Running, "an in-flight run is cancelled by its worker");
    let events = watch_to_end(&mut client, &busy, Duration::from_secs(20)).await.unwrap();
    let took = events.last().unwrap().at_ms - cancelled_at;
    assert!(took < 10_000, "the cancel took {took} ms: it waited for the lease renewal");

    for (id, reason, steps) in
        [(&queued, "changed my mind", 0), (&waiting, "no longer needed", 2), (&busy, "stop the sleep", 0)]
    {
        let events = watch_to_end(&mut client, id, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!(final_status(&events), RunStatus::Cancelled, "{events:?}");
        assert_eq!(check_history(&events), Ok(steps));
        let run = client.get_run(GetRunRequest { run_id: id.to_string(), latest_steps: 0 }).await.unwrap().into_inner();
        let why = run.stop_reason.unwrap();
        assert_eq!((why.code.as_str(), why.message.as_str(), why.by.as_str()), ("cancelled", reason, "tenant:default"));
    }

    // The queued run's task reached the worker later and was dropped: it stays cancelled.
    let run = client.get_run(GetRunRequest { run_id: queued.clone(), latest_steps: 0 }).await.unwrap().into_inner();
    assert_eq!((run.status(), run.steps_completed), (RunStatus::Cancelled, 0));

    // A finished run cannot be cancelled, and is not changed.
    let e = client.cancel_run(cancel(&busy, "again")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("cancelled"), "{e}");
    let run = client.get_run(GetRunRequest { run_id: busy.clone(), latest_steps: 0 }).await.unwrap().into_inner();
    assert_eq!(run.stop_reason.unwrap().message, "stop the sleep");
    let e = client.cancel_run(cancel("no-such-run", "")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_time_out_and_step_budgets_exhaust() {
    let stack = Stack::full("bounds", StackOptions::default()).await;
    let mut client = stack.client().await;

    // In flight at the deadline: the step is cut short.
    let mut spec = script(&[("echo", "{}"), ("sleep", r#"{"ms":60000}"#)]);
    spec.budget = Some(Budget { max_wall_clock_ms: 1_500, ..Default::default() });
    let sleeping = submit(&mut client, spec, "").await;
    // Waiting at the deadline: the reaper ends it.
    let mut spec = script(&[("wait", r#"{"ms":60000}"#), ("echo", "{}")]);
    spec.budget = Some(Budget { max_wall_clock_ms: 1_500, ..Default::default() });
    let waiting = submit(&mut client, spec, "").await;
    // Out of steps.
    let mut spec = echoes(5);
    spec.budget = Some(Budget { max_steps: 3, ..Default::default() });
    let greedy = submit(&mut client, spec, "").await;

    let events = watch_to_end(&mut client, &sleeping, Duration::from_secs(30)).await.unwrap();
    assert_eq!(final_status(&events), RunStatus::TimedOut);
    assert_eq!(check_history(&events), Ok(1));
    assert_eq!(events.last().unwrap().stop_reason.as_ref().unwrap().code, "deadline");

    let events = watch_to_end(&mut client, &waiting, Duration::from_secs(30)).await.unwrap();
    assert_eq!(final_status(&events), RunStatus::TimedOut);
    assert!(events.iter().any(|e| e.kind() == EventKind::RunWaiting));
    let why = events.last().unwrap().stop_reason.clone().unwrap();
    assert_eq!((why.code.as_str(), why.by.as_str()), ("deadline", "reaper"));

    let events = watch_to_end(&mut client, &greedy, Duration::from_secs(30)).await.unwrap();
    assert_eq!(final_status(&events), RunStatus::BudgetExhausted);
    assert_eq!(check_history(&events), Ok(3));
    assert_eq!(events.last().unwrap().stop_reason.as_ref().unwrap().code, "max_steps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_run_wakes_on_its_timer() {
    let stack = Stack::full("timer", StackOptions::default()).await;
    let mut client = stack.client().await;
    let id = submit(&mut client, script(&[("echo", "{}"), ("wait", r#"{"ms":800}"#), ("echo", "{}")]), "").await;
    let events = watch_to_end(&mut client, &id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(final_status(&events), RunStatus::Succeeded);
    assert_eq!(check_history(&events), Ok(3));
    let waited = events.iter().find(|e| e.kind() == EventKind::RunWaiting).unwrap();
    let resumed = events.iter().find(|e| e.kind() == EventKind::RunResumed).unwrap();
    assert!(resumed.at_ms >= waited.not_before_ms, "woken before its time");
}
