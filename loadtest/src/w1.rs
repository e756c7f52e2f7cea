//! Workload W1 (steady throughput): N runs of K `echo` steps with C in flight. Each run is
//! submitted, then watched until its RUN_FINISHED event; latency is submit → finished.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton_proto::v1::{
    planner, Budget, EventKind, GetRunRequest, Planner, RunSpec, RunStatus, ScriptPlan, StopReason, SubmitRunRequest,
    ToolCall, WatchRunRequest,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::Status;

use batonctl::client::{code_name, Client};

use crate::grpc::retryable;
use crate::report::{End, Outcome, Report};

/// Attempts per gRPC call before a run is given up as an error.
const MAX_ATTEMPTS: u32 = 8;
/// How often progress goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The shape of a W1 workload.
#[derive(Debug, Clone)]
pub struct W1 {
    /// Runs to submit.
    pub runs: u64,
    /// `echo` steps per run.
    pub steps: u32,
    /// Runs in flight at once.
    pub concurrency: usize,
}

impl W1 {
    /// The spec every run of this workload is submitted with.
    fn spec(&self) -> RunSpec {
        let steps = (0..self.steps)
            .map(|i| ToolCall { tool: "echo".to_string(), args_json: format!("{{\"step\":{i}}}") })
            .collect();
        RunSpec {
            goal: "baton-loadtest w1".to_string(),
            planner: Some(Planner { kind: Some(planner::Kind::Script(ScriptPlan { steps })) }),
            // Exactly the plan, so a long plan is not cut short by the default step budget.
            budget: Some(Budget { max_steps: self.steps, ..Budget::default() }),
            labels: [("loadtest".to_string(), "w1".to_string())].into(),
            ..RunSpec::default()
        }
    }
}

/// Runs the workload against `target`, stopping after `timeout` whatever is still in flight.
pub async fn run(target: &Client, w: &W1, timeout: Duration) -> anyhow::Result<Report> {
    let title = format!("baton-loadtest w1: {} runs x {} echo steps, concurrency {}", w.runs, w.steps, w.concurrency);
    let mut report = Report::new(title, w.runs)?;
    // Keys unique per invocation, so a rerun never deduplicates against an earlier one.
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let shared = Arc::new(Shared {
        target: target.clone(),
        spec: w.spec(),
        next: AtomicU64::new(0),
        runs: w.runs,
        key_prefix: format!("lt-{}-{since_epoch}", std::process::id()),
    });
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel(w.concurrency.max(1) * 2);
    let mut workers = JoinSet::new();
    for _ in 0..(w.concurrency as u64).min(w.runs) {
        workers.spawn(worker(shared.clone(), tx.clone()));
    }
    drop(tx);

    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let timed_out = loop {
        tokio::select! {
            outcome = rx.recv() => match outcome {
                Some(outcome) => report.record(outcome),
                None => break false,
            },
            () = &mut deadline => break true,
            _ = progress.tick() => eprintln!(
                "[{:>7.1}s] {}/{} runs done, {} ok",
                started.elapsed().as_secs_f64(),
                report.done(),
                w.runs,
                report.ok()
            ),
        }
    };
    report.finish(started.elapsed(), timed_out);
    workers.abort_all();
    Ok(report)
}

/// What the worker tasks share.
struct Shared {
    target: Client,
    spec: RunSpec,
    /// Index of the next run to start.
    next: AtomicU64,
    runs: u64,
    key_prefix: String,
}

/// Takes runs one at a time until all are taken, sending each outcome to the collector.
async fn worker(shared: Arc<Shared>, tx: mpsc::Sender<Outcome>) {
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.runs {
            return;
        }
        let key = format!("{}-{i}", shared.key_prefix);
        let outcome = one_run(&shared.target, &shared.spec, &key).await;
        if tx.send(outcome).await.is_err() {
            return;
        }
    }
}

/// Submits one run and follows it to the end.
async fn one_run(target: &Client, spec: &RunSpec, key: &str) -> Outcome {
    let started = Instant::now();
    let mut steps = 0;
    let result = match submit(target, spec, key).await {
        Ok(run_id) => follow(target, &run_id, &mut steps).await,
        Err(status) => Err(status),
    };
    let latency = started.elapsed();
    let (end, detail) = match result {
        Ok((status, stop)) => (End::Finished(status), stop),
        Err(status) => {
            let label = format!("error:{}", code_name(status.code()));
            (End::Error(label), status.message().to_string())
        }
    };
    Outcome { end, latency, steps, detail }
}

/// SubmitRun, retried on transient failures; the idempotency key makes a retry safe.
async fn submit(target: &Client, spec: &RunSpec, key: &str) -> Result<String, Status> {
    let mut attempt = 0;
    loop {
        let req = SubmitRunRequest { spec: Some(spec.clone()), idempotency_key: key.to_string() };
        match target.rpc.clone().submit_run(target.request(req)).await {
            Ok(resp) => return Ok(resp.into_inner().run_id),
            Err(status) if retryable(&status) && attempt + 1 < MAX_ATTEMPTS => backoff(&mut attempt).await,
            Err(status) => return Err(status),
        }
    }
}

/// Watches `run_id` until RUN_FINISHED and returns its status and stop reason, resuming after
/// the last seen event when the stream breaks. `steps` counts STEP_COMPLETED events.
async fn follow(target: &Client, run_id: &str, steps: &mut u64) -> Result<Finish, Status> {
    let mut after_seq = 0;
    let mut attempt = 0;
    loop {
        match watch_once(target, run_id, &mut after_seq, steps).await {
            Ok(Some(finish)) => return Ok(finish),
            // The stream closed without RUN_FINISHED: ask for the run itself.
            Ok(None) => {
                let req = target.request(GetRunRequest { run_id: run_id.to_string(), latest_steps: 0 });
                let run = target.rpc.clone().get_run(req).await?.into_inner();
                if baton_core::status::is_terminal(run.status()) {
                    *steps = (*steps).max(u64::from(run.steps_completed));
                    return Ok((run.status(), stop_text(run.stop_reason.as_ref())));
                }
            }
            Err(status) if retryable(&status) => {}
            Err(status) => return Err(status),
        }
        if attempt + 1 >= MAX_ATTEMPTS {
            return Err(Status::unavailable(format!(
                "run {run_id}: watch ended {MAX_ATTEMPTS} times before it finished"
            )));
        }
        backoff(&mut attempt).await;
    }
}

/// One WatchRun stream from `after_seq`: how the run finished, or `None` if the stream ended first.
async fn watch_once(
    target: &Client,
    run_id: &str,
    after_seq: &mut u64,
    steps: &mut u64,
) -> Result<Option<Finish>, Status> {
    let req = WatchRunRequest { run_id: run_id.to_string(), after_seq: *after_seq };
    let mut stream = target.rpc.clone().watch_run(target.request(req)).await?.into_inner();
    while let Some(event) = stream.message().await? {
        *after_seq = (*after_seq).max(event.seq);
        match event.kind() {
            EventKind::StepCompleted => *steps += 1,
            EventKind::RunFinished => return Ok(Some((event.status(), stop_text(event.stop_reason.as_ref())))),
            _ => {}
        }
    }
    Ok(None)
}

/// A finished run: its terminal status and its stop reason as `code: message`.
type Finish = (RunStatus, String);

fn stop_text(stop: Option<&StopReason>) -> String {
    match stop {
        Some(s) if s.message.is_empty() => s.code.clone(),
        Some(s) => format!("{}: {}", s.code, s.message),
        None => String::new(),
    }
}

/// Sleeps 50 ms, 100 ms, 200 ms … (at most 2 s) and counts the attempt.
async fn backoff(attempt: &mut u32) {
    let ms = (50u64 << (*attempt).min(6)).min(2_000);
    *attempt += 1;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_k_echo_steps_and_a_matching_budget() {
        let spec = W1 { runs: 1, steps: 3, concurrency: 1 }.spec();
        let Some(planner::Kind::Script(script)) = spec.planner.and_then(|p| p.kind) else { panic!("no script") };
        assert_eq!(script.steps.len(), 3);
        assert!(script.steps.iter().all(|s| s.tool == "echo"));
        assert_eq!(script.steps[2].args_json, r#"{"step":2}"#);
        assert_eq!(spec.budget.map(|b| b.max_steps), Some(3));
    }
}
