//! The network faults a fleet across hosts must survive, each a function that breaks a link of a
//! running [`Fleet`], checks what the design promises, heals the link and returns a [`Report`]:
//! figures for people, problems for the test (none when the promise held).

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use baton_proto::v1::{EventKind, RunEvent, RunStatus};

use super::fleet::Fleet;
use crate::agents::eventually;
use crate::runs::{check_history, echoes, final_status, script, submit, watch_to_end};
use crate::tool_server::Behavior;

/// How long a run may take to end once its fault is in place or healed.
const RUN_WITHIN: Duration = Duration::from_secs(90);
/// A submit's bound (`gateway.submit_dispatch_wait_ms`, 1 s) plus room for a loaded machine.
const SUBMIT_WITHIN: Duration = Duration::from_secs(2);

/// What a scenario measured and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// The scenario.
    pub name: String,
    /// Figures, one `name: value` per line.
    pub figures: Vec<String>,
    /// Broken promises; empty when the scenario passed.
    pub problems: Vec<String>,
}

impl Report {
    fn new(name: &str) -> Self {
        Self { name: name.to_string(), ..Default::default() }
    }

    fn figure(&mut self, line: String) {
        self.figures.push(line);
    }

    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(problem());
        }
    }

    /// Ends the scenario early with `problem`.
    fn fail(mut self, problem: String) -> Self {
        self.problems.push(problem);
        self
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.problems.is_empty() { "ok" } else { "FAILED" };
        writeln!(f, "{}: {verdict}", self.name)?;
        for line in &self.figures {
            writeln!(f, "  {line}")?;
        }
        for problem in &self.problems {
            writeln!(f, "  problem: {problem}")?;
        }
        Ok(())
    }
}

/// The worker holding a run mid-step (its `effect` call is under way) is cut off from Redis:
/// its lease lapses, it commits nothing, the run resumes on another worker, and the effect is
/// not repeated under a second key (the successor's call carries the same `<run>:<step>` key
/// and a newer fence, which the external system dedupes). After the link heals, the cut
/// worker's late commit changes nothing.
pub async fn worker_cut_from_redis(fleet: &Fleet) -> Report {
    let mut report = Report::new("worker cut off from Redis mid-step");
    let Ok(mut client) = fleet.client().await else { return report.fail("no gateway".into()) };
    fleet.tools.set("effect", Behavior::SlowFirst { delay: Duration::from_secs(3), times: 1 });
    let spec = script(&[("effect", r#"{"order":"N-1"}"#), ("echo", "{}")]);
    let run = submit(&mut client, spec, "netns-redis-cut").await;
    if !eventually(RUN_WITHIN, || !fleet.tools.calls("effect").is_empty()).await {
        let run = client.get_run(baton_proto::v1::GetRunRequest { run_id: run.clone(), latest_steps: 5 }).await;
        return report.fail(format!("the effect was never called; the run: {run:?}\n{}", fleet.logs()));
    }
    let first = fleet.tools.calls("effect")[0].clone();
    let Some(cut) = fleet.worker_at(ip4(first.peer)) else {
        return report.fail(format!("the effect was called from {}, not a worker", first.peer));
    };
    let cut_worker = &fleet.workers[cut];
    let cut_name = cut_worker.host.name.clone();
    if let Err(e) = fleet.hosts().cut(&fleet.workers[cut].host, fleet.redis_ip()) {
        return report.fail(e);
    }
    let cut_ms = crate::now_ms();
    let events = match watch_to_end(&mut client, &run, RUN_WITHIN).await {
        Ok(events) => events,
        Err(e) => {
            let _ = fleet.hosts().heal(&fleet.workers[cut].host, fleet.redis_ip());
            return report.fail(format!("{e}\n{}", fleet.logs()));
        }
    };
    report.figure(format!("cut {cut_name} from Redis while its effect call was under way"));
    let step0 = completed(&events, 0);
    if let Some(step) = step0 {
        let after = (step.at_ms - cut_ms) as f64 / 1000.0;
        report.figure(format!("step 0 committed by {} {after:.1} s after the cut", short(&step.worker)));
    }
    report.check(final_status(&events) == RunStatus::Succeeded, || format!("run ended {:?}", final_status(&events)));
    report.check(check_history(&events).is_ok(), || format!("history: {:?}", check_history(&events)));
    report.check(step0.is_some_and(|s| !cut_worker.is_instance(&s.worker)), || {
        format!("step 0 was not committed by another worker: {step0:?}")
    });
    let calls = fleet.tools.calls("effect");
    let keys: BTreeSet<&str> = calls.iter().map(|c| c.idempotency_key.as_str()).collect();
    report.figure(format!("effect calls: {} (keys {keys:?}, fences {:?})", calls.len(), fences(&calls)));
    report.check(keys.len() == 1 && keys.contains(format!("{run}:0").as_str()), || {
        format!("the effect was called under other keys: {keys:?}")
    });
    report.check(step0.is_some_and(|s| first.fence.is_some_and(|f| s.fence > f)), || {
        format!("the committed step's fence is not newer than the cut worker's {:?}", first.fence)
    });

    // Healed: the cut worker's late commit is refused, the history stays as it was.
    if let Err(e) = fleet.hosts().heal(&fleet.workers[cut].host, fleet.redis_ip()) {
        return report.fail(e);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    match watch_to_end(&mut client, &run, RUN_WITHIN).await {
        Ok(after) => {
            let by_cut = after.iter().filter(|e| cut_worker.is_instance(&e.worker));
            let committed_by_cut = by_cut.filter(|e| e.kind() == EventKind::StepCompleted).count();
            report.check(after.len() == events.len(), || {
                format!("the history changed after the heal: {} events, then {}", events.len(), after.len())
            });
            report.check(committed_by_cut == 0, || format!("{cut_name} committed {committed_by_cut} steps"));
        }
        Err(e) => report.problems.push(format!("after the heal: {e}")),
    }
    report
}

/// A worker holding runs is cut off from the broker but not from Redis: the runs it holds
/// finish, and runs submitted after the cut are stepped by the other workers.
pub async fn worker_cut_from_broker(fleet: &Fleet) -> Report {
    let mut report = Report::new("worker cut off from the broker");
    let Ok(mut client) = fleet.client().await else { return report.fail("no gateway".into()) };
    let held_spec = script(&[("sleep", r#"{"ms":2000}"#), ("echo", "{}"), ("echo", "{}")]);
    let mut before = Vec::new();
    for i in 0..12 {
        before.push(submit(&mut client, held_spec.clone(), &format!("netns-broker-cut-held-{i}")).await);
    }
    // The worker holding the most of them is the one cut.
    let mut holders = vec![Vec::new(); fleet.workers.len()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while holders.iter().all(Vec::is_empty) && Instant::now() < deadline {
        for (run, holder) in before.iter().zip(fleet.lease_holders(&before).await) {
            if let Some(w) = holder {
                holders[w].push(run.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some((cut, held)) = holders.into_iter().enumerate().max_by_key(|(_, runs)| runs.len()) else {
        return report.fail("no workers".into());
    };
    if held.is_empty() {
        return report.fail(format!("no worker claimed a run within 30 s\n{}", fleet.logs()));
    }
    let cut_worker = &fleet.workers[cut];
    let cut_name = cut_worker.host.name.clone();
    if let Err(e) = fleet.hosts().cut(&fleet.workers[cut].host, fleet.broker_ip()) {
        return report.fail(e);
    }
    let cut_ms = crate::now_ms();
    report.figure(format!("cut {cut_name} from the broker while it held {} runs", held.len()));
    let mut after = Vec::new();
    for i in 0..12 {
        after.push(submit(&mut client, echoes(3), &format!("netns-broker-cut-new-{i}")).await);
    }
    let held_ended = end_all(&mut client, &held, &mut report).await;
    report.figure(format!("its held runs: {}", ends(&held_ended, cut_ms)));
    let new_ended = end_all(&mut client, &after, &mut report).await;
    report.figure(format!("runs submitted after the cut: {}", ends(&new_ended, cut_ms)));
    let _ = end_all(&mut client, &before, &mut report).await;
    let by_cut = new_ended.iter().flatten().filter(|e| e.kind() == EventKind::StepCompleted);
    let stepped_by_cut = by_cut.filter(|e| cut_worker.is_instance(&e.worker)).count();
    report.check(stepped_by_cut == 0, || {
        format!("{cut_name} stepped {stepped_by_cut} steps of runs submitted after the cut")
    });
    report.check(held_ended.len() == held.len(), || "not every held run ended".into());
    if let Err(e) = fleet.hosts().heal(&fleet.workers[cut].host, fleet.broker_ip()) {
        report.problems.push(e);
    }
    report
}

/// The gateway is cut off from the broker: submits still answer within their bound (the run is
/// durable in Redis when they do), and the runs start once the link returns (or once the reaper,
/// which still reaches the broker, dispatches them).
pub async fn gateway_cut_from_broker(fleet: &Fleet) -> Report {
    let mut report = Report::new("gateway cut off from the broker");
    let Ok(mut client) = fleet.client().await else { return report.fail("no gateway".into()) };
    if let Err(e) = fleet.hosts().cut(&fleet.gateway.host, fleet.broker_ip()) {
        return report.fail(e);
    }
    let mut runs = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let started = Instant::now();
        runs.push(submit(&mut client, echoes(2), &format!("netns-gateway-cut-{i}")).await);
        slowest = slowest.max(started.elapsed());
    }
    report.figure(format!("10 submits with the link cut: slowest answered in {} ms", slowest.as_millis()));
    report.check(slowest <= SUBMIT_WITHIN, || format!("a submit took {slowest:?}"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Err(e) = fleet.hosts().heal(&fleet.gateway.host, fleet.broker_ip()) {
        return report.fail(e);
    }
    let healed_ms = crate::now_ms();
    let ended = end_all(&mut client, &runs, &mut report).await;
    let first_steps: Vec<i64> = ended.iter().filter_map(|e| completed(e, 0).map(|s| s.at_ms - healed_ms)).collect();
    if let (Some(min), Some(max)) = (first_steps.iter().min(), first_steps.iter().max()) {
        report.figure(format!(
            "first steps {min} to {max} ms after the heal (negative: dispatched by the reaper before it)"
        ));
    }
    report
}

/// W1 on the fleet as it is (run it on a fleet with latency and loss for the lossy figures):
/// `runs` runs of `steps` echo steps, `in_flight` at a time; every run must succeed.
pub async fn w1(fleet: &Fleet, label: &str, runs: usize, steps: usize, in_flight: usize) -> Report {
    use futures::StreamExt as _;
    let mut report = Report::new(&format!("W1 {label}: {runs} runs x {steps} echo steps, {in_flight} in flight"));
    let Ok(client) = fleet.client().await else { return report.fail("no gateway".into()) };
    // Idempotency keys allow no spaces; the label may have some.
    let key: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let started = Instant::now();
    let results: Vec<Result<Duration, String>> = futures::stream::iter(0..runs)
        .map(|i| {
            let (mut client, key) = (client.clone(), key.clone());
            async move {
                let t = Instant::now();
                let run = submit(&mut client, echoes(steps), &format!("netns-w1-{key}-{i}")).await;
                let events = watch_to_end(&mut client, &run, RUN_WITHIN).await?;
                match final_status(&events) {
                    RunStatus::Succeeded => Ok(t.elapsed()),
                    other => Err(format!("run {run} ended {other:?}")),
                }
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut took: Vec<Duration> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        report.problems.push(e.clone());
    }
    took.sort();
    let pct = |p: f64| took.get(((took.len() as f64 * p) as usize).min(took.len().saturating_sub(1))).copied();
    report.figure(format!(
        "{:.0} steps/s; run p50 {:.0} ms, p99 {:.0} ms; wall {:.1} s",
        (took.len() * steps) as f64 / wall.as_secs_f64(),
        pct(0.5).unwrap_or_default().as_secs_f64() * 1000.0,
        pct(0.99).unwrap_or_default().as_secs_f64() * 1000.0,
        wall.as_secs_f64()
    ));
    report
}

/// Watches each run to its end; a run that does not end well is a problem. Returns the histories.
async fn end_all(
    client: &mut baton_proto::v1::run_service_client::RunServiceClient<tonic::transport::Channel>,
    runs: &[String],
    report: &mut Report,
) -> Vec<Vec<RunEvent>> {
    let mut ended = Vec::new();
    for run in runs {
        match watch_to_end(client, run, RUN_WITHIN).await {
            Ok(events) => {
                report.check(final_status(&events) == RunStatus::Succeeded, || {
                    format!("run {run} ended {:?}", final_status(&events))
                });
                report.check(check_history(&events).is_ok(), || format!("run {run}: {:?}", check_history(&events)));
                ended.push(events);
            }
            Err(e) => report.problems.push(e),
        }
    }
    ended
}

/// When the runs ended, relative to `since_ms`, and which workers committed their steps.
fn ends(histories: &[Vec<RunEvent>], since_ms: i64) -> String {
    let ended: Vec<i64> = histories.iter().filter_map(|h| h.last().map(|e| e.at_ms - since_ms)).collect();
    let workers: BTreeSet<&str> =
        histories.iter().flatten().filter(|e| e.kind() == EventKind::StepCompleted).map(|e| short(&e.worker)).collect();
    let (min, max) = (ended.iter().min().copied().unwrap_or(0), ended.iter().max().copied().unwrap_or(0));
    format!(
        "ended {:.1} to {:.1} s after the cut, steps committed by {workers:?}",
        min as f64 / 1000.0,
        max as f64 / 1000.0
    )
}

fn completed(events: &[RunEvent], step: u32) -> Option<&RunEvent> {
    events.iter().find(|e| e.kind() == EventKind::StepCompleted && e.step == step)
}

fn fences(calls: &[crate::tool_server::RecordedCall]) -> Vec<u64> {
    calls.iter().filter_map(|c| c.fence).collect()
}

fn ip4(addr: std::net::SocketAddr) -> std::net::Ipv4Addr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

/// `worker-2@1234-ab` → `worker-2`.
fn short(worker: &str) -> &str {
    worker.split('@').next().unwrap_or(worker)
}
