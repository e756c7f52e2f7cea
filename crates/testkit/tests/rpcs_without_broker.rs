//! The RPCs that change a run from outside — CancelRun, ResolveApproval, ReconcileRun and
//! RequeueDeadLetter — answer within their bound with the broker frozen (SIGSTOP): the change
//! is durable in Redis when they answer, and its hand-off to Kafka completes once the broker is
//! back (SIGCONT), or is redone by the reaper.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use baton_proto::v1::{
    CancelRunRequest, ReconcileRunRequest, Reconciliation, RequeueDeadLetterRequest, RetryPolicy, RunStatus,
};
use baton_testkit::agents::{eventually, AgentStack};
use baton_testkit::now_ms;
use baton_testkit::runs::{
    approve, check_history, require_approval, script, submit, wait_for_run, wait_for_status, watch_to_end,
};
use baton_testkit::tool_server::Behavior;

const WITHIN: Duration = Duration::from_secs(60);
/// gateway.submit_dispatch_wait_ms (1 s) plus room for a loaded machine.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_changes_answer_in_bounded_time_while_the_broker_is_frozen() {
    // The worker's group session outlives the freeze: this test is about the RPCs, not about a
    // consumer rejoining a broker that was away (the fleet work covers that).
    let mut a = AgentStack::start("frozen-broker", |o| {
        o.env.retain(|(k, _)| k != "BATON_KAFKA_SESSION_TIMEOUT_MS" && k != "BATON_KAFKA_MAX_POLL_INTERVAL_MS");
        o.env.push(("BATON_KAFKA_SESSION_TIMEOUT_MS".into(), "30000".into()));
        o.env.push(("BATON_KAFKA_MAX_POLL_INTERVAL_MS".into(), "40000".into()));
    })
    .await;
    let mut client = a.stack.client().await;
    let mut admin = a.stack.admin().await;

    // Four runs, each waiting for something from outside.
    require_approval(&mut admin, "ship_order").await;
    let approval = submit(&mut client, script(&[("ship_order", r#"{"order_id":"Q1"}"#), ("echo", "{}")]), "").await;
    let timer = submit(&mut client, script(&[("echo", "{}"), ("wait", r#"{"ms":600000}"#), ("echo", "{}")]), "").await;
    let outage_ends = now_ms() + 3_000;
    let mut dead = script(&[("flaky", &format!(r#"{{"fail_until_ms":{outage_ends}}}"#)), ("echo", "{}")]);
    dead.retry = Some(RetryPolicy { max_attempts: 1, initial_backoff_ms: 100, max_backoff_ms: 1_000 });
    let dead = submit(&mut client, dead, "").await;
    a.tools.set("refund", Behavior::Slow(Duration::from_secs(30)));
    let cut_off =
        submit(&mut client, script(&[("refund", r#"{"order_id":"Q2","amount":3}"#), ("echo", "{}")]), "").await;
    assert!(eventually(WITHIN, || a.tools.calls("refund").len() == 1).await, "{}", a.stack.logs());
    let worker = a.stack.find("worker");
    a.stack.services[worker].kill().await;
    a.stack.start("worker").await;
    let waiting = |reason: &'static str| move |r: &baton_proto::v1::Run| r.wait_reason == reason;
    let approval_run = wait_for_run(&mut client, &approval, WITHIN, waiting("approval")).await.unwrap();
    wait_for_run(&mut client, &timer, WITHIN, waiting("timer")).await.unwrap();
    wait_for_status(&mut client, &dead, RunStatus::DeadLettered, WITHIN).await.unwrap();
    wait_for_run(&mut client, &cut_off, WITHIN, waiting("needs_reconciliation"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    tokio::time::sleep(Duration::from_millis((outage_ends - now_ms()).max(0) as u64)).await;

    // The broker freezes. Each change answers within its bound.
    a.stack.broker.proc.freeze();
    let timed =
        |took: Duration, what: &str| assert!(took < ANSWER_WITHIN, "{what} took {took:?} with the broker frozen");
    let started = Instant::now();
    let cancelled = client.cancel_run(CancelRunRequest { run_id: timer.clone(), reason: "no".into() }).await.unwrap();
    timed(started.elapsed(), "CancelRun");
    assert_eq!(cancelled.into_inner().status(), RunStatus::Cancelled);
    let pending = approval_run.pending.unwrap().approval.unwrap();
    let started = Instant::now();
    client.resolve_approval(approve(&approval, &pending, "ops", "")).await.unwrap();
    timed(started.elapsed(), "ResolveApproval");
    let started = Instant::now();
    client
        .reconcile_run(ReconcileRunRequest {
            run_id: cut_off.clone(),
            step: 0,
            decision: Reconciliation::Done as i32,
            output_json: r#"{"refunded":true}"#.into(),
            actor: "ops".into(),
            comment: "the bank shows it".into(),
        })
        .await
        .unwrap();
    timed(started.elapsed(), "ReconcileRun");
    let started = Instant::now();
    admin.requeue_dead_letter(RequeueDeadLetterRequest { run_id: dead.clone() }).await.unwrap();
    timed(started.elapsed(), "RequeueDeadLetter");

    // The broker comes back: every change takes effect.
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.stack.broker.proc.thaw();
    for (id, steps) in [(&approval, 2), (&cut_off, 2), (&dead, 2)] {
        let run = wait_for_status(&mut client, id, RunStatus::Succeeded, WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
        assert_eq!(run.steps_completed, steps);
        assert_eq!(check_history(&watch_to_end(&mut client, id, WITHIN).await.unwrap()), Ok(steps));
    }
    let run = wait_for_status(&mut client, &timer, RunStatus::Cancelled, WITHIN).await.unwrap();
    assert_eq!(run.steps_completed, 2);
    assert_eq!(a.tools.calls("ship_order").len(), 1);
    assert_eq!(a.tools.calls("refund").len(), 1, "the reconciled call was not repeated");
}
