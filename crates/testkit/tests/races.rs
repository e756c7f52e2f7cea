//! Races over real processes: a cancel accepted while a step runs is honoured when the run next
//! waits (a timer, an approval); a dead-lettered run keeps its letter when its worker is killed
//! while the broker is frozen; a worker stalled past its liveness has its late tool call refused
//! by the tool, which fences callers with the run's fencing token; a submit slowed between its
//! in-flight entry and its run (a Redis failover mid-submit) still has its run dispatched.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_proto::v1::{
    CancelRunRequest, GetRunRequest, ListDeadLettersRequest, ReconcileRunRequest, Reconciliation,
    RequeueDeadLetterRequest, RetryPolicy, RunStatus,
};
use baton_testkit::agents::{eventually, AgentStack};
use baton_testkit::runs::{
    check_history, final_status, require_approval, script, submit, wait_for_run, wait_for_status, watch_to_end,
};
use baton_testkit::tool_server::{Behavior, Verdict};
use baton_testkit::{now_ms, Stack, StackOptions};
use tonic::Code;

const WITHIN: Duration = Duration::from_secs(30);

/// Ledger calls recorded under the run's step `step` (the `ledger` tool's audited effects).
async fn ledger_calls(stack: &Stack, run_id: &str, step: u32) -> usize {
    stack.store().ledger_calls(&format!("{run_id}:{step}")).await.unwrap().len()
}

fn cancel(run_id: &str) -> CancelRunRequest {
    CancelRunRequest { run_id: run_id.into(), reason: "stop it".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_accepted_mid_step_is_honoured_when_the_run_next_waits() {
    let stack = Stack::full("cancel-wait", StackOptions::default()).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;
    // The heartbeat looks for stop requests once a second; a 700 ms step ends before it does, so
    // the cancel is met first by the commits that follow the step.
    let timer =
        submit(&mut client, script(&[("sleep", r#"{"ms":700}"#), ("wait", r#"{"ms":4000}"#), ("ledger", "{}")]), "")
            .await;
    wait_for_status(&mut client, &timer, RunStatus::Running, WITHIN).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let reply = client.cancel_run(cancel(&timer)).await.unwrap().into_inner();
    assert_eq!(reply.status(), RunStatus::Running, "accepted for the worker to apply");

    // The same with an approval: an operator makes every ledger call need one.
    require_approval(&mut admin, "ledger").await;
    let approval = submit(&mut client, script(&[("sleep", r#"{"ms":700}"#), ("ledger", "{}")]), "").await;
    wait_for_status(&mut client, &approval, RunStatus::Running, WITHIN).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(client.cancel_run(cancel(&approval)).await.unwrap().into_inner().status(), RunStatus::Running);

    for id in [&timer, &approval] {
        let run = wait_for_run(&mut client, id, WITHIN, |r| baton_core::status::is_terminal(r.status()))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!(run.status(), RunStatus::Cancelled, "{run:?}");
        let why = run.stop_reason.unwrap();
        assert_eq!((why.code.as_str(), why.message.as_str()), ("cancelled", "stop it"));
        assert_eq!(run.steps_completed, 1, "the step that ran is recorded, nothing after it");
    }
    // Past the timer's wake-up: nothing woke the cancelled run, the ledger was never called.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    for id in [&timer, &approval] {
        let run = client.get_run(GetRunRequest { run_id: id.to_string(), latest_steps: 0 }).await.unwrap().into_inner();
        assert_eq!(run.status(), RunStatus::Cancelled);
        let events = watch_to_end(&mut client, id, WITHIN).await.unwrap();
        assert_eq!(check_history(&events), Ok(1));
        assert_eq!(final_status(&events), RunStatus::Cancelled);
    }
    assert_eq!(ledger_calls(&stack, &timer, 2).await, 0, "the ledger effect after the wait never happened");
    assert_eq!(ledger_calls(&stack, &approval, 1).await, 0, "the approved-later action never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_survives_its_worker_dying_before_the_hand_on() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_SCHEDULER_RETRY_TIERS_MS".into(), "[300, 5000]".into()));
    let mut stack = Stack::full("letter-crash", opts).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;
    // The step after the sleep fails for good (one attempt) until the outage ends.
    let outage_ends = now_ms() + 6_000;
    let args = format!(r#"{{"fail_until_ms":{outage_ends}}}"#);
    let mut spec = script(&[("sleep", r#"{"ms":1500}"#), ("flaky", &args), ("echo", "{}")]);
    spec.retry = Some(RetryPolicy { max_attempts: 1, initial_backoff_ms: 100, max_backoff_ms: 1_000 });
    let id = submit(&mut client, spec, "").await;
    wait_for_status(&mut client, &id, RunStatus::Running, WITHIN).await.unwrap();
    // The broker freezes during the sleep: the worker commits the run's end, then waits on the
    // broker for its events, and is killed there.
    stack.broker.proc.freeze();
    wait_for_status(&mut client, &id, RunStatus::DeadLettered, WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let worker = stack.find("worker");
    stack.services[worker].kill().await;
    stack.broker.proc.thaw();

    // The letter was committed with the status: listed, and its topic record follows (the
    // reaper sends what the dead worker could not).
    let letters = admin.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner();
    let letter = letters.dead_letters.iter().find(|l| l.run_id == id).expect("the letter is listed");
    assert_eq!((letter.step, letter.tool.as_str()), (1, "flaky"));
    let brokers = stack.broker.bootstrap();
    let record = tokio::task::spawn_blocking(move || dlq_record_keys(&brokers, Duration::from_secs(40))).await.unwrap();
    assert!(record.iter().any(|k| k == &id), "no DLQ record for {id}\n{}", stack.logs());

    // An operator requeues after the outage; a new worker finishes the run.
    stack.start("worker").await;
    tokio::time::sleep(Duration::from_millis((outage_ends - now_ms()).max(0) as u64 + 100)).await;
    let requeued = admin.requeue_dead_letter(RequeueDeadLetterRequest { run_id: id.clone() }).await.unwrap();
    assert_eq!(requeued.into_inner().status(), RunStatus::Running);
    let run = wait_for_status(&mut client, &id, RunStatus::Succeeded, WITHIN).await.unwrap();
    assert_eq!(run.steps_completed, 3);
    let events = watch_to_end(&mut client, &id, WITHIN).await.unwrap();
    assert_eq!(check_history(&events), Ok(3));
    let letters = admin.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner();
    assert!(letters.dead_letters.iter().all(|l| l.run_id != id), "the requeued letter is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_s_late_call_is_refused_by_the_tool() {
    let mut a = AgentStack::start("fence", |_| {}).await;
    let mut client = a.stack.client().await;
    // The first refund takes 15 s to take effect: its caller will have lost the run by then.
    a.tools.set("refund", Behavior::SlowFirst { delay: Duration::from_secs(15), times: 1 });
    let id = submit(&mut client, script(&[("refund", r#"{"order_id":"F1","amount":5}"#), ("echo", "{}")]), "").await;
    assert!(eventually(WITHIN, || a.tools.calls("refund").len() == 1).await, "{}", a.stack.logs());
    let first_fence = a.tools.calls("refund")[0].fence.expect("every call carries Baton-Fence");
    // A second worker joins; then the first stalls (SIGSTOP) mid-call, past its liveness.
    a.stack.start("worker").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled = a.stack.services.iter().position(|p| p.name.starts_with("worker")).unwrap();
    a.stack.services[stalled].freeze();
    // The reaper breaks its lease; the other worker finds the call may have gone out and the
    // run waits for an operator, who says it did not happen.
    let run = wait_for_run(&mut client, &id, WITHIN, |r| r.wait_reason == "needs_reconciliation")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    assert_eq!(run.status(), RunStatus::Waiting);
    let reconcile = ReconcileRunRequest {
        run_id: id.clone(),
        step: 0,
        decision: Reconciliation::NotDone as i32,
        output_json: String::new(),
        actor: "ops".into(),
        comment: "the bank shows no refund".into(),
    };
    client.reconcile_run(reconcile).await.unwrap();
    let run = wait_for_status(&mut client, &id, RunStatus::Succeeded, WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    assert_eq!(run.steps_completed, 2);
    // The stalled caller's call reaches its effect last, and the tool refuses it.
    assert!(
        eventually(Duration::from_secs(20), || a.tools.verdicts("refund").len() == 2).await,
        "{:?}",
        a.tools.verdicts("refund")
    );
    let verdicts = a.tools.verdicts("refund");
    let accepted: Vec<u64> =
        verdicts.iter().filter(|(_, v)| *v == Verdict::Accepted).filter_map(|(c, _)| c.fence).collect();
    assert_eq!(accepted.len(), 1, "the refund took effect once: {verdicts:?}");
    assert!(accepted[0] > first_fence);
    assert!(
        verdicts.iter().any(|(c, v)| c.fence == Some(first_fence) && matches!(v, Verdict::StaleFence { .. })),
        "{verdicts:?}"
    );
    // The stalled worker wakes to a refusal and a lost lease: it writes nothing.
    a.stack.services[stalled].thaw();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = watch_to_end(&mut client, &id, WITHIN).await.unwrap();
    assert_eq!(check_history(&events), Ok(2));
    assert_eq!(final_status(&events), RunStatus::Succeeded);
    let e = client.cancel_run(cancel(&id)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}

/// The gateway writes a run's in-flight entry, then the run, then dispatches its first task. A
/// submit slowed between the first two (a Redis failover) meets a reaper that finds the entry due
/// and the run missing: the entry must stay, so that the run the submit then writes is
/// dispatched even if the submit never gets to dispatch it (cut off, or answered an error its
/// client retried into a deduplicated answer). Here the gateway's writes are made by hand, the
/// second one 3 s late, and the task is never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_written_late_by_a_slowed_submit_is_still_dispatched() {
    use baton_core::{admission::admit, catalog::Catalog, events::push};
    use baton_store::Index;
    let stack = Stack::full("late-run", StackOptions::default()).await;
    let store = stack.store();
    // A UUIDv7, as the gateway mints: its age is what tells the reaper the submit may be running.
    let run_id = format!("{:08x}-{:04x}-7000-8000-000000000001", now_ms() >> 16, now_ms() & 0xffff);
    let mut spec = script(&[("echo", "{}"), ("echo", "{}")]);
    spec.lane = "main".into();
    let now = now_ms();
    let policy = baton_config::Config::default().admission_policy();
    let mut state = admit(&run_id, "default", "", spec, &policy, &Catalog::builtins(), now).unwrap();
    // Due at once: the reaper, sweeping every 250 ms, meets it many times before the run exists.
    store.index_set_all(&run_id, &[(Index::Inflight, now), (Index::Deadlines, state.deadline_at_ms)]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        store.index_score(Index::Inflight, &run_id).await.unwrap().is_some(),
        "the reaper dropped the entry of a run its submit had not written yet"
    );
    let mut events = Vec::new();
    push(&mut state, &mut events, baton_proto::v1::EventKind::RunQueued, now_ms(), |_| {});
    assert!(store.create_run(&state, &events[0]).await.unwrap());
    let mut client = stack.client().await;
    let ended = wait_for_status(&mut client, &run_id, RunStatus::Succeeded, WITHIN).await;
    assert!(ended.is_ok(), "the late run was never dispatched: {ended:?}\n{}", stack.logs());
}

/// Keys of the records on baton.tasks.dlq, read from the start for at most `within`.
fn dlq_record_keys(brokers: &str, within: Duration) -> Vec<String> {
    use baton_bus::rdkafka::consumer::{BaseConsumer, Consumer as _};
    use baton_bus::rdkafka::{ClientConfig, Message as _};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-dlq-{}", now_ms()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["baton.tasks.dlq"]).unwrap();
    let deadline = std::time::Instant::now() + within;
    let mut keys = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            keys.push(String::from_utf8_lossy(m.key().unwrap_or_default()).to_string());
            return keys;
        }
    }
    keys
}
