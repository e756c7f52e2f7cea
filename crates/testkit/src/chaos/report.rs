//! The chaos run's report, and the audit that fills it from each run's history, the ledger,
//! Redis and the `baton.events` topic once the driver stops breaking things.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baton_core::status::is_terminal;
use baton_proto::v1::{EventKind, RunEvent, RunStatus};

use super::races;
use crate::runs::{check_history, watch_to_end};
use crate::Stack;

/// What happened and what the audit found.
#[derive(Debug, Clone, Default)]
pub struct ChaosReport {
    /// Runs admitted.
    pub runs: usize,
    /// Runs by final status name.
    pub statuses: HashMap<String, usize>,
    /// Steps committed, over all runs.
    pub steps: u64,
    /// Processes SIGKILLed (workers, scheduler, reaper, Redis, broker).
    pub kills: usize,
    /// (run, kill) pairs where a run was stalled by a kill and later moved on.
    pub recoveries: usize,
    /// Runs neither terminal nor waiting at the end.
    pub lost: usize,
    /// Steps committed twice or out of order, or with a wrong key (history problems).
    pub history_problems: Vec<String>,
    /// Ledger calls made after their step's commit.
    pub duplicates: usize,
    /// Ledger calls repeated before a commit (a crash mid-step; same key, allowed).
    pub ledger_repeats: usize,
    /// Time from a kill to the stalled run's next event, ms, sorted.
    pub recovery_ms: Vec<u64>,
    /// Wall time of the whole scenario.
    pub elapsed: Duration,
    /// Events committed in Redis, over all runs.
    pub events: usize,
    /// Committed events missing from `baton.events`: `<run>:<seq>`.
    pub events_missing: Vec<String>,
    /// Records on `baton.events` repeating an event (at-least-once delivery; allowed).
    pub event_duplicates: usize,
    /// What went wrong with the driver itself (a submit that kept failing, an audit that could
    /// not run): a report with failures does not pass.
    pub failures: Vec<String>,
    /// Approval requests the driver granted (each run's requests must all be answered once).
    pub approvals: usize,
    /// Steps held because the upstream tool's circuit breaker was open.
    pub breaker_holds: usize,
    /// Cancels the gateway accepted while the run raced towards a wait (each audited).
    pub cancels: usize,
    /// Dead-lettered runs whose letter and topic record were audited.
    pub dead_letters: usize,
    /// Workers stalled (SIGSTOP) past their liveness, then resumed.
    pub stalls: usize,
    /// Time from a Redis primary's kill until its replica served its slots, ms.
    pub failover_ms: Option<u64>,
}

impl ChaosReport {
    /// Recovery time percentile (0–100), ms.
    pub fn recovery_percentile(&self, p: f64) -> u64 {
        if self.recovery_ms.is_empty() {
            return 0;
        }
        let i = ((p / 100.0) * (self.recovery_ms.len() - 1) as f64).round() as usize;
        self.recovery_ms[i.min(self.recovery_ms.len() - 1)]
    }

    /// A readable block of the counts.
    pub fn render(&self) -> String {
        let mut statuses: Vec<_> = self.statuses.iter().collect();
        statuses.sort();
        format!(
            "chaos: runs={} steps={} kills={} recoveries={} duplicates={} lost={} history_problems={} \
             ledger_repeats_before_commit={} recovery_p50_ms={} recovery_p99_ms={} events={} events_missing={} \
             event_duplicates={} approvals={} breaker_holds={} cancels={} dead_letters={} stalls={} \
             redis_failover_ms={:?} driver_failures={} elapsed_s={:.1}\nstatuses: {:?}",
            self.runs,
            self.steps,
            self.kills,
            self.recoveries,
            self.duplicates,
            self.lost,
            self.history_problems.len(),
            self.ledger_repeats,
            self.recovery_percentile(50.0),
            self.recovery_percentile(99.0),
            self.events,
            self.events_missing.len(),
            self.event_duplicates,
            self.approvals,
            self.breaker_holds,
            self.cancels,
            self.dead_letters,
            self.stalls,
            self.failover_ms,
            self.failures.len(),
            self.elapsed.as_secs_f64(),
            statuses,
        )
    }
}

/// True when nothing was lost, repeated, out of order or missing, and the driver itself worked.
pub fn passed(r: &ChaosReport) -> bool {
    r.lost == 0
        && r.duplicates == 0
        && r.history_problems.is_empty()
        && r.events_missing.is_empty()
        && r.failures.is_empty()
}

pub(super) async fn audit(
    stack: &Stack,
    mut client: baton_proto::v1::run_service_client::RunServiceClient<tonic::transport::Channel>,
    ids: Vec<String>,
    cancels: &HashMap<String, bool>,
    kills: &[Instant],
    started: Instant,
    settle: Duration,
) -> ChaosReport {
    let store = stack.store();
    let wall_start = crate::now_ms() - started.elapsed().as_millis() as i64;
    let kill_ms: Vec<i64> = kills.iter().map(|k| wall_start + k.duration_since(started).as_millis() as i64).collect();
    let mut report = ChaosReport { runs: ids.len(), kills: kills.len(), ..Default::default() };
    let deadline = Instant::now() + settle;
    let mut dead = Vec::new();
    for id in &ids {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        let events = match watch_to_end(&mut client, id, left).await {
            Ok(events) => events,
            Err(e) => {
                report.lost += 1;
                report.history_problems.push(format!("{id}: {e}; {}", where_it_is(&store, id).await));
                continue;
            }
        };
        let status = events.last().map_or(RunStatus::Unspecified, |e| e.status());
        if !is_terminal(status) && status != RunStatus::Waiting {
            report.lost += 1;
        }
        *report.statuses.entry(baton_core::status::name(status).to_string()).or_default() += 1;
        if cancels.get(id) == Some(&true) {
            races::audit_cancel(&store, id, status, &mut report).await;
        }
        if status == RunStatus::DeadLettered {
            dead.push(id.clone());
        }
        match check_history(&events) {
            Ok(steps) => report.steps += u64::from(steps),
            Err(e) => report.history_problems.push(format!("{id}: {e}")),
        }
        for e in events.iter().filter(|e| e.kind() == EventKind::StepFailed) {
            if e.idempotency_key != format!("{id}:{}", e.step) {
                report
                    .history_problems
                    .push(format!("{id}: retry of step {} ran with key {}", e.step, e.idempotency_key));
            }
        }
        audit_ledger(&store, &events, &mut report).await;
        let count = |kind| events.iter().filter(|e| e.kind() == kind).count();
        if count(EventKind::ApprovalRequested) != count(EventKind::ApprovalResolved) {
            report.history_problems.push(format!("{id}: an approval request was not answered exactly once"));
        }
        report.breaker_holds +=
            events.iter().filter(|e| e.kind() == EventKind::StepFailed && e.reason_code == "held").count();
        recoveries(&events, &kill_ms, &mut report);
    }
    report.recovery_ms.sort_unstable();
    races::audit_dead_letters(stack.admin().await, &stack.broker.bootstrap(), &dead, &mut report).await;
    let events = crate::events_audit::audit(&store, &stack.broker.bootstrap(), &ids, Duration::from_secs(60)).await;
    report.events = events.committed;
    report.events_missing = events.missing;
    report.event_duplicates = events.duplicates;
    report.elapsed = started.elapsed();
    report
}

/// Where a run that did not finish stands, from Redis: its checkpoint, lease and in-flight entry.
async fn where_it_is(store: &baton_store::Store, run_id: &str) -> String {
    let state = store.load_run(run_id).await.ok().flatten();
    let lease = store.lease_remaining_ms(run_id).await.ok().flatten();
    let inflight = store.index_score(baton_store::Index::Inflight, run_id).await.ok().flatten();
    match state {
        Some(s) => format!(
            "status {} at step {} attempt {}, wait_reason {:?}, lease {lease:?} ms left, in-flight due {:?} ({} ms from now), seq {}",
            baton_core::status::name(s.status()),
            s.next_step,
            s.attempt,
            s.wait_reason,
            inflight,
            inflight.map_or(0, |d| d - crate::now_ms()),
            s.event_seq,
        ),
        None => "no checkpoint in Redis".to_string(),
    }
}

/// Every ledger call of a committed step must have run under a fence no newer than the commit's.
async fn audit_ledger(store: &baton_store::Store, events: &[RunEvent], report: &mut ChaosReport) {
    for e in events.iter().filter(|e| e.kind() == EventKind::StepCompleted && e.tool == "ledger") {
        let calls = store.ledger_calls(&e.idempotency_key).await.unwrap_or_default();
        if calls.is_empty() {
            report.history_problems.push(format!("{}: committed ledger step has no recorded call", e.idempotency_key));
        }
        report.duplicates += calls.iter().filter(|c| c.fence > e.fence).count();
        report.ledger_repeats += calls.iter().filter(|c| c.fence < e.fence).count();
    }
}

/// A run stalled by a kill: its last event before the kill and its next event after it are
/// further apart than normal progress; the recovery time is kill → next event.
fn recoveries(events: &[RunEvent], kill_ms: &[i64], report: &mut ChaosReport) {
    for &k in kill_ms {
        let before = events.iter().rev().find(|e| e.at_ms <= k);
        let after = events.iter().find(|e| e.at_ms > k);
        if let (Some(b), Some(a)) = (before, after) {
            if !is_terminal(b.status()) && a.at_ms - k > 1_000 {
                report.recoveries += 1;
                report.recovery_ms.push((a.at_ms - k) as u64);
            }
        }
    }
}
