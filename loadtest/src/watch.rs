//! Workload "watch": does the request path slow down while many watches are open? Parks
//! `watches` runs on an hour-long timer, times `samples` SubmitRun and GetRun calls (one at a
//! time) with no watch open, opens one WatchRun per parked run (spread over several
//! connections), times the same calls again, checks every watch is still open, and cancels the
//! parked runs.

use std::time::{Duration, Instant};

use baton_proto::v1::{
    planner, CancelRunRequest, GetRunRequest, Planner, RunEvent, RunSpec, RunStatus, ScriptPlan, SubmitRunRequest,
    ToolCall, WatchRunRequest,
};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tonic::Streaming;

use batonctl::client::Client;

/// Watches per gateway connection (HTTP/2 caps the streams of one).
const WATCHES_PER_CONNECTION: usize = 100;
/// Longest wait for any one call, or for the watches to open.
const CALL_BOUND: Duration = Duration::from_secs(60);
/// Submits (parking or cancelling) in flight at once.
const SETUP_CONCURRENCY: usize = 16;

/// The shape of a watch workload.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Gateway address (more connections are opened for the watches).
    pub addr: String,
    /// Tenant to act as.
    pub tenant: String,
    /// Parked runs, one watch each.
    pub watches: usize,
    /// Calls timed per kind and phase.
    pub samples: usize,
}

/// Latencies of one kind of call in one phase, µs.
struct Series(Histogram<u64>);

impl Series {
    fn new() -> anyhow::Result<Self> {
        Ok(Self(Histogram::new_with_bounds(1, 3_600_000_000, 3)?))
    }

    fn record(&mut self, took: Duration) {
        let _ = self.0.record((took.as_micros() as u64).max(1));
    }

    /// `p50 / p99 / max` in ms.
    fn summary(&self) -> (f64, f64, f64) {
        let ms = |us: u64| us as f64 / 1000.0;
        (ms(self.0.value_at_quantile(0.5)), ms(self.0.value_at_quantile(0.99)), ms(self.0.max()))
    }
}

/// What the workload measured.
pub struct WatchReport {
    watches: usize,
    open_after: usize,
    samples: usize,
    /// SubmitRun and GetRun with no watch open, then with every watch open.
    phases: [(Series, Series); 2],
    errors: Vec<String>,
}

impl WatchReport {
    /// The report as text with a `RESULT` line.
    pub fn render(&self) -> String {
        let mut out = format!(
            "baton-loadtest watch: {} samples each of SubmitRun and GetRun, one at a time, with 0 and {} watches open \
             ({} still open at the end)\n",
            self.samples, self.watches, self.open_after
        );
        let mut result = format!("RESULT mode=watch watches={} open_after={}", self.watches, self.open_after);
        for ((submit, get), (open, tag)) in self.phases.iter().zip([(0, "w0"), (self.watches, "wn")]) {
            let (sp50, sp99, smax) = submit.summary();
            let (gp50, gp99, gmax) = get.summary();
            out.push_str(&format!(
                "  {open:>5} watches: SubmitRun p50 {sp50:.2} ms, p99 {sp99:.2} ms, max {smax:.2} ms; \
                 GetRun p50 {gp50:.2} ms, p99 {gp99:.2} ms, max {gmax:.2} ms\n"
            ));
            result.push_str(&format!(
                " submit_p50_ms_{tag}={sp50:.2} submit_p99_ms_{tag}={sp99:.2} get_p50_ms_{tag}={gp50:.2} \
                 get_p99_ms_{tag}={gp99:.2}"
            ));
        }
        for e in self.errors.iter().take(5) {
            out.push_str(&format!("  error: {e}\n"));
        }
        out.push_str(&format!("{result} errors={}", self.errors.len()));
        out
    }

    /// Passed: every call answered and every watch stayed open.
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.open_after == self.watches
    }
}

fn short_spec() -> RunSpec {
    let steps = vec![ToolCall { tool: "echo".to_string(), args_json: "{}".to_string() }];
    RunSpec {
        goal: "baton-loadtest watch: sample".to_string(),
        planner: Some(Planner { kind: Some(planner::Kind::Script(ScriptPlan { steps })) }),
        labels: [("loadtest".to_string(), "watch".to_string())].into(),
        ..RunSpec::default()
    }
}

/// Runs the workload against `target`.
pub async fn run(target: &Client, w: &Watch) -> anyhow::Result<WatchReport> {
    let mut errors = Vec::new();
    eprintln!("parking {} runs", w.watches);
    let parked = park(target, w.watches).await?;
    let before = sample(target, &parked, w.samples, &mut errors).await?;
    eprintln!("opening {} watches", parked.len());
    let mut watches = open_watches(w, &parked).await?;
    let during = sample(target, &parked, w.samples, &mut errors).await?;
    let mut open_after = 0;
    for stream in &mut watches {
        if tokio::time::timeout(Duration::from_millis(5), stream.message()).await.is_err() {
            open_after += 1;
        }
    }
    drop(watches);
    eprintln!("cancelling the parked runs");
    cancel(target, &parked).await;
    Ok(WatchReport { watches: parked.len(), open_after, samples: w.samples, phases: [before, during], errors })
}

/// Submits `n` parked runs, `SETUP_CONCURRENCY` at a time; their ids.
async fn park(target: &Client, n: usize) -> anyhow::Result<Vec<String>> {
    let mut tasks = JoinSet::new();
    for part in 0..SETUP_CONCURRENCY {
        let target = target.clone();
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for _ in (part..n).step_by(SETUP_CONCURRENCY) {
                let request = SubmitRunRequest {
                    spec: Some(crate::parked::spec(Duration::from_secs(3600), "watch")),
                    idempotency_key: String::new(),
                };
                let mut rpc = target.rpc.clone();
                ids.push(rpc.submit_run(target.request(request)).await?.into_inner().run_id);
            }
            Ok::<_, tonic::Status>(ids)
        });
    }
    let mut ids = Vec::new();
    while let Some(part) = tasks.join_next().await {
        ids.extend(part??);
    }
    Ok(ids)
}

/// Times `samples` SubmitRun and GetRun calls, one at a time.
async fn sample(
    target: &Client,
    parked: &[String],
    samples: usize,
    errors: &mut Vec<String>,
) -> anyhow::Result<(Series, Series)> {
    let (mut submits, mut gets) = (Series::new()?, Series::new()?);
    let mut rpc = target.rpc.clone();
    for i in 0..samples {
        let request = SubmitRunRequest { spec: Some(short_spec()), idempotency_key: String::new() };
        let started = Instant::now();
        match tokio::time::timeout(CALL_BOUND, rpc.submit_run(target.request(request))).await {
            Ok(Ok(_)) => submits.record(started.elapsed()),
            Ok(Err(e)) => errors.push(format!("SubmitRun: {e}")),
            Err(_) => errors.push(format!("SubmitRun: no answer within {CALL_BOUND:?}")),
        }
        let run_id = parked[i % parked.len().max(1)].clone();
        let started = Instant::now();
        match tokio::time::timeout(CALL_BOUND, rpc.get_run(target.request(GetRunRequest { run_id, latest_steps: 0 })))
            .await
        {
            Ok(Ok(_)) => gets.record(started.elapsed()),
            Ok(Err(e)) => errors.push(format!("GetRun: {e}")),
            Err(_) => errors.push(format!("GetRun: no answer within {CALL_BOUND:?}")),
        }
    }
    Ok((submits, gets))
}

/// One watch per parked run, each read until its run shows parked (history or live).
async fn open_watches(w: &Watch, parked: &[String]) -> anyhow::Result<Vec<Streaming<RunEvent>>> {
    let mut connections = Vec::new();
    for _ in 0..parked.len().div_ceil(WATCHES_PER_CONNECTION) {
        connections.push(Client::connect(&w.addr, &w.tenant).await?);
    }
    let mut tasks = JoinSet::new();
    for (i, run_id) in parked.iter().enumerate() {
        let client = connections[i / WATCHES_PER_CONNECTION].clone();
        let run_id = run_id.clone();
        tasks.spawn(async move {
            let mut rpc = client.rpc.clone();
            let request = client.request(WatchRunRequest { run_id: run_id.clone(), after_seq: 0 });
            let mut stream = rpc.watch_run(request).await?.into_inner();
            while let Some(event) = stream.message().await? {
                if event.status() == RunStatus::Waiting {
                    return Ok(stream);
                }
            }
            Err(tonic::Status::aborted(format!("the watch of {run_id} ended before its run parked")))
        });
    }
    let mut streams = Vec::new();
    let opened = tokio::time::timeout(CALL_BOUND, async {
        while let Some(stream) = tasks.join_next().await {
            streams.push(stream??);
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    match opened {
        Ok(result) => result?,
        Err(_) => {
            anyhow::bail!("only {} of {} watches saw their run park within {CALL_BOUND:?}", streams.len(), parked.len())
        }
    }
    Ok(streams)
}

/// Cancels the parked runs (best effort: they are the workload's own).
async fn cancel(target: &Client, parked: &[String]) {
    let mut tasks = JoinSet::new();
    for part in 0..SETUP_CONCURRENCY {
        let (target, ids): (Client, Vec<String>) =
            (target.clone(), parked.iter().skip(part).step_by(SETUP_CONCURRENCY).cloned().collect());
        tasks.spawn(async move {
            let mut rpc = target.rpc.clone();
            for run_id in ids {
                let request = CancelRunRequest { run_id, reason: "baton-loadtest watch: done".to_string() };
                let _ = rpc.cancel_run(target.request(request)).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
