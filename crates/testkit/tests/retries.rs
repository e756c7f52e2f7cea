//! Retries over real processes: a failing step is retried from its tier topic with the same
//! idempotency key; exhausted retries dead-letter the run (DLQ record with origin headers),
//! and a requeue resumes it; a short-tier retry never waits behind a long-tier one.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_bus::rdkafka::consumer::{BaseConsumer, Consumer as _};
use baton_bus::rdkafka::message::Headers as _;
use baton_bus::rdkafka::{ClientConfig, Message as _};
use baton_proto::v1::{
    DiscardDeadLetterRequest, EventKind, GetRunRequest, ListDeadLettersRequest, RequeueDeadLetterRequest, RetryPolicy,
    RunStatus,
};
use baton_testkit::now_ms;
use baton_testkit::runs::{check_history, final_status, script, submit, wait_for_run, wait_for_status, watch_to_end};
use baton_testkit::{Stack, StackOptions};

fn retry(max_attempts: u32, initial_backoff_ms: u64) -> Option<RetryPolicy> {
    Some(RetryPolicy { max_attempts, initial_backoff_ms, max_backoff_ms: 60_000 })
}

fn options() -> StackOptions {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_SCHEDULER_RETRY_TIERS_MS".into(), "[300, 5000]".into()));
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_is_retried_with_the_same_key_then_succeeds() {
    let stack = Stack::full("retry", options()).await;
    let mut client = stack.client().await;
    let mut spec = script(&[("echo", "{}"), ("flaky", r#"{"fail_attempts":2}"#), ("echo", "{}")]);
    spec.retry = retry(3, 100);
    let id = submit(&mut client, spec, "").await;
    let events = watch_to_end(&mut client, &id, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert_eq!(check_history(&events), Ok(3));
    assert_eq!(final_status(&events), RunStatus::Succeeded);
    let step1: Vec<_> = events.iter().filter(|e| e.step == 1 && e.tool == "flaky").collect();
    let kinds: Vec<_> = step1.iter().map(|e| (e.kind(), e.attempt)).collect();
    assert_eq!(kinds, vec![(EventKind::StepFailed, 0), (EventKind::StepFailed, 1), (EventKind::StepCompleted, 2)]);
    assert!(step1.iter().all(|e| e.idempotency_key == format!("{id}:1")), "retries kept their key");
    // Each retry ran no earlier than its back-off allowed.
    assert!(step1[0].not_before_ms > 0 && step1[1].at_ms >= step1[0].not_before_ms);
    assert!(step1[2].at_ms >= step1[1].not_before_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_dead_letter_the_run_and_a_requeue_resumes_it() {
    let stack = Stack::full("dlq", options()).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;
    let outage_ends = now_ms() + 4_000;
    let args = format!(r#"{{"fail_until_ms":{outage_ends}}}"#);
    let mut spec = script(&[("echo", "{}"), ("flaky", &args), ("echo", "{}")]);
    spec.retry = retry(2, 100);
    let id = submit(&mut client, spec, "").await;
    let events = watch_to_end(&mut client, &id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(final_status(&events), RunStatus::DeadLettered);
    let run = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 0 }).await.unwrap().into_inner();
    assert_eq!(run.stop_reason.as_ref().unwrap().code, "retries_exhausted");
    assert_eq!(run.steps_completed, 1);

    let letters = admin.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner().dead_letters;
    let letter = letters.iter().find(|l| l.run_id == id).expect("dead letter listed");
    assert_eq!((letter.step, letter.attempts, letter.tool.as_str()), (1, 2, "flaky"));
    assert_eq!(letter.origin_topic, "baton.tasks.main", "the last attempt came back from the scheduler to the lane");
    assert!(letter.error.contains("flaky"));

    // The DLQ topic holds the record with headers naming origin, attempts and error.
    let headers = dlq_headers(&stack.broker.bootstrap(), &id);
    assert_eq!(headers.get("baton-origin-topic").map(String::as_str), Some("baton.tasks.main"));
    assert_eq!(headers.get("baton-origin-offset"), Some(&letter.origin_offset.to_string()));
    assert_eq!(headers.get("baton-attempts").map(String::as_str), Some("2"));
    assert!(headers.get("baton-error").is_some_and(|e| e.contains("flaky")));

    // After the outage, an operator requeues: the run resumes at the failed step.
    tokio::time::sleep(Duration::from_millis((outage_ends - now_ms()).max(0) as u64 + 100)).await;
    let requeued =
        admin.requeue_dead_letter(RequeueDeadLetterRequest { run_id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(requeued.status(), RunStatus::Running);
    let run = wait_for_status(&mut client, &id, RunStatus::Succeeded, Duration::from_secs(30)).await.unwrap();
    assert_eq!(run.steps_completed, 3);
    let events = watch_to_end(&mut client, &id, Duration::from_secs(10)).await.unwrap();
    assert!(events.iter().any(|e| e.kind() == EventKind::RunRequeued));
    assert_eq!(check_history(&events), Ok(3), "no step committed twice across the requeue");
    let e = admin.requeue_dead_letter(RequeueDeadLetterRequest { run_id: id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "a requeued letter is gone");
    let e = admin.discard_dead_letter(DiscardDeadLetterRequest { run_id: id }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_tier_retry_is_not_delayed_by_a_long_tier_one() {
    let stack = Stack::full("tiers", options()).await;
    let mut client = stack.client().await;
    let mut slow = script(&[("flaky", r#"{"fail_attempts":1}"#)]);
    slow.retry = retry(2, 5_000);
    let slow_id = submit(&mut client, slow, "").await;
    // Make sure the slow retry is parked on the 5 s tier first.
    wait_for_run(&mut client, &slow_id, Duration::from_secs(10), |run| run.attempt >= 1).await.unwrap();
    let mut fast = script(&[("flaky", r#"{"fail_attempts":1}"#)]);
    fast.retry = retry(2, 300);
    let fast_id = submit(&mut client, fast, "").await;

    let fast_events = watch_to_end(&mut client, &fast_id, Duration::from_secs(30)).await.unwrap();
    let slow_events = watch_to_end(&mut client, &slow_id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(final_status(&fast_events), RunStatus::Succeeded);
    assert_eq!(final_status(&slow_events), RunStatus::Succeeded);
    let slow_retry_due = slow_events.iter().find(|e| e.kind() == EventKind::StepFailed).unwrap().not_before_ms;
    let fast_done = fast_events.iter().find(|e| e.kind() == EventKind::StepCompleted).unwrap().at_ms;
    assert!(
        fast_done < slow_retry_due,
        "the 300 ms retry finished at {fast_done}, after the 5 s one was due at {slow_retry_due}"
    );
}

/// Reads baton.tasks.dlq from the start and returns the headers of the record keyed `run_id`.
fn dlq_headers(brokers: &str, run_id: &str) -> std::collections::HashMap<String, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-dlq-{run_id}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["baton.tasks.dlq"]).unwrap();
    for _ in 0..300 {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        if message.key() != Some(run_id.as_bytes()) {
            continue;
        }
        let mut out = std::collections::HashMap::new();
        if let Some(headers) = message.headers() {
            for h in headers.iter() {
                out.insert(h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).to_string());
            }
        }
        return out;
    }
    panic!("no DLQ record for {run_id}");
}
