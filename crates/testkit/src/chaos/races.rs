//! The chaos driver's race workloads and their audits: runs cancelled at a random moment
//! while they step towards a wait (a cancel accepted must end the run `cancelled`, the effect
//! after the wait never happening), runs that exhaust their retries while workers die (every
//! dead-lettered run keeps its letter and gets its `baton.tasks.dlq` record), and workers
//! stalled (SIGSTOP) past their liveness, whose late commits must be refused.

use std::collections::HashSet;
use std::time::Duration;

use baton_proto::v1::admin_service_client::AdminServiceClient;
use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{CancelRunRequest, ListDeadLettersRequest, RetryPolicy, RunSpec, RunStatus};
use tonic::transport::Channel;

use super::ChaosReport;
use crate::runs::script;

/// What the run that a race workload is: how the driver treats run `i` of a race scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaceKind {
    /// `[sleep, wait 1.5 s, ledger]`, cancelled while it sleeps or enters the wait.
    Cancelled,
    /// `[echo, flaky always failing, echo]` with two attempts: dead-lettered.
    DeadLettered,
    /// The mixed workload.
    Mixed,
}

/// Which race run `i` is (one in four of each kind, the rest mixed).
pub fn kind_of(i: usize) -> RaceKind {
    match i % 4 {
        1 => RaceKind::Cancelled,
        3 => RaceKind::DeadLettered,
        _ => RaceKind::Mixed,
    }
}

/// The spec of a race run of `kind` (not `Mixed`).
pub fn workload(kind: RaceKind, i: usize) -> RunSpec {
    match kind {
        RaceKind::Cancelled => {
            let sleep = format!(r#"{{"ms":{}}}"#, 300 + (i * 53) % 600);
            script(&[("sleep", &sleep), ("wait", r#"{"ms":1500}"#), ("ledger", "{}")])
        }
        _ => {
            let mut spec = script(&[("echo", "{}"), ("flaky", r#"{"fail_rate":1.0}"#), ("echo", "{}")]);
            spec.retry = Some(RetryPolicy { max_attempts: 2, initial_backoff_ms: 100, max_backoff_ms: 1_000 });
            spec
        }
    }
}

/// When run `i`'s cancel goes out after its submit: within its sleep, or as it enters the wait.
pub fn cancel_delay(i: usize) -> Duration {
    Duration::from_millis(100 + ((i * 97) % 1_000) as u64)
}

/// Cancels `run_id` after `delay`; true if the gateway accepted the cancel (it answered, for a
/// run not yet ended, RUNNING or CANCELLED).
pub async fn cancel_after(mut client: RunServiceClient<Channel>, run_id: String, delay: Duration) -> (String, bool) {
    tokio::time::sleep(delay).await;
    let req = CancelRunRequest { run_id: run_id.clone(), reason: "chaos: racing a transition".into() };
    let accepted = client.cancel_run(req).await.is_ok();
    (run_id, accepted)
}

/// A run whose cancel was accepted must have ended `cancelled`, with its ledger step (after the
/// wait) never executed.
pub async fn audit_cancel(store: &baton_store::Store, run_id: &str, status: RunStatus, report: &mut ChaosReport) {
    report.cancels += 1;
    if status != RunStatus::Cancelled {
        report.history_problems.push(format!("{run_id}: cancel accepted, but the run ended {status:?}"));
    }
    let calls = store.ledger_calls(&format!("{run_id}:2")).await.unwrap_or_default();
    if !calls.is_empty() {
        report.history_problems.push(format!("{run_id}: cancelled, yet its ledger step ran {} time(s)", calls.len()));
    }
}

/// Every dead-lettered run is listed by ListDeadLetters and has a record on `baton.tasks.dlq`.
pub async fn audit_dead_letters(
    mut admin: AdminServiceClient<Channel>,
    brokers: &str,
    dead: &[String],
    report: &mut ChaosReport,
) {
    report.dead_letters = dead.len();
    if dead.is_empty() {
        return;
    }
    let mut listed = HashSet::new();
    let mut token = String::new();
    loop {
        let req = ListDeadLettersRequest { limit: 500, page_token: token.clone(), ..Default::default() };
        match admin.list_dead_letters(req).await {
            Ok(page) => {
                let page = page.into_inner();
                listed.extend(page.dead_letters.into_iter().map(|l| l.run_id));
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            Err(e) => {
                report.failures.push(format!("ListDeadLetters: {e}"));
                return;
            }
        }
    }
    let (brokers, want) = (brokers.to_string(), dead.to_vec());
    let on_topic = tokio::task::spawn_blocking(move || dlq_keys(&brokers, &want, Duration::from_secs(60)))
        .await
        .unwrap_or_default();
    for id in dead {
        if !listed.contains(id) {
            report.history_problems.push(format!("{id}: dead-lettered without a listed letter"));
        }
        if !on_topic.contains(id) {
            report.history_problems.push(format!("{id}: dead-lettered without a baton.tasks.dlq record"));
        }
    }
}

/// Keys of `baton.tasks.dlq` records, read from the start until every one of `want` was seen or
/// `within` passed.
fn dlq_keys(brokers: &str, want: &[String], within: Duration) -> HashSet<String> {
    use baton_bus::rdkafka::consumer::{BaseConsumer, Consumer as _};
    use baton_bus::rdkafka::{ClientConfig, Message as _};
    let mut seen = HashSet::new();
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("chaos-dlq-audit-{}", crate::now_ms()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
    {
        Ok(c) => c,
        Err(_) => return seen,
    };
    if consumer.subscribe(&["baton.tasks.dlq"]).is_err() {
        return seen;
    }
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline && !want.iter().all(|w| seen.contains(w)) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.insert(String::from_utf8_lossy(m.key().unwrap_or_default()).to_string());
        }
    }
    seen
}

/// Resumes a process frozen with SIGSTOP after `after` (a worker stalled past its liveness).
pub fn thaw_later(pid: i32, after: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = tokio::process::Command::new("kill").arg("-CONT").arg(pid.to_string()).status().await;
    });
}
