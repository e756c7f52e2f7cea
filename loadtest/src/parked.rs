//! Workload "parked": what runs that wait cost. Submits `runs` runs of `[wait park, echo]` at
//! `rate` per second, so that at the end of the submissions every one of them is parked on its
//! timer at once (no worker holds a parked run); reads Redis's memory before and at that peak;
//! then waits for every timer to fire and every run to finish, and reports how late each run
//! finished against its wake-up time: finished − (admitted + park), which also counts the run's
//! own two steps and hand-ons, so it bounds the timer's lateness from above.

use std::time::{Duration, Instant};

use baton_proto::v1::{planner, ListRunsRequest, Planner, RunSpec, RunStatus, ScriptPlan, SubmitRunRequest, ToolCall};
use tokio::task::JoinSet;

use batonctl::client::Client;

/// Submits in flight at once.
const SUBMITTERS: usize = 16;
/// Runs per ListRuns page.
const PAGE: u32 = 500;

/// The shape of a parked workload.
#[derive(Debug, Clone)]
pub struct Parked {
    /// Runs to park.
    pub runs: u64,
    /// Submissions per second.
    pub rate: u64,
    /// How long each run waits on its timer.
    pub park: Duration,
    /// The stack's Redis, for its memory.
    pub redis_url: String,
    /// Overall bound.
    pub timeout: Duration,
}

/// What the workload measured.
pub struct ParkedReport {
    runs: u64,
    parked_at_peak: u64,
    bytes_per_parked_run: f64,
    finished: u64,
    late_ms: Vec<i64>,
    errors: Vec<String>,
}

impl ParkedReport {
    /// The report as text with a `RESULT` line.
    pub fn render(&self) -> String {
        let mut late = self.late_ms.clone();
        late.sort_unstable();
        let pick = |q: f64| late.get(((late.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(-1);
        let mut out = format!(
            "baton-loadtest parked: {} runs parked at once, {:.0} B of Redis memory per parked run; {} finished, \
             finished after their wake-up by p50 {} ms, p99 {} ms, max {} ms\n",
            self.parked_at_peak,
            self.bytes_per_parked_run,
            self.finished,
            pick(0.5),
            pick(0.99),
            late.last().copied().unwrap_or(-1)
        );
        for e in self.errors.iter().take(5) {
            out.push_str(&format!("  error: {e}\n"));
        }
        out.push_str(&format!(
            "RESULT mode=parked runs={} parked_at_peak={} bytes_per_parked_run={:.0} finished={} late_p50_ms={} \
             late_p99_ms={} late_max_ms={} errors={}",
            self.runs,
            self.parked_at_peak,
            self.bytes_per_parked_run,
            self.finished,
            pick(0.5),
            pick(0.99),
            late.last().copied().unwrap_or(-1),
            self.errors.len()
        ));
        out
    }

    /// Passed: every run parked and finished, with no error.
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.finished == self.runs
    }
}

/// A run of `[wait park, echo]`: parked on a timer, holding no worker, for `workload` (its label
/// and goal). Also the watch workload's parked runs.
pub fn spec(park: Duration, workload: &str) -> RunSpec {
    let steps = vec![
        ToolCall { tool: "wait".to_string(), args_json: format!(r#"{{"ms":{}}}"#, park.as_millis()) },
        ToolCall { tool: "echo".to_string(), args_json: "{}".to_string() },
    ];
    RunSpec {
        goal: format!("baton-loadtest {workload}: parked"),
        planner: Some(Planner { kind: Some(planner::Kind::Script(ScriptPlan { steps })) }),
        labels: [("loadtest".to_string(), workload.to_string())].into(),
        ..RunSpec::default()
    }
}

/// Submits `runs` copies of `spec` at `rate` per second from [`SUBMITTERS`] tasks; returns the
/// errors of the submits that failed.
pub async fn submit_at_rate(target: &Client, runs: u64, rate: u64, spec: &RunSpec) -> anyhow::Result<Vec<String>> {
    let mut submitters = JoinSet::new();
    let per_submitter = runs.div_ceil(SUBMITTERS as u64);
    let interval = Duration::from_secs_f64(SUBMITTERS as f64 / rate.max(1) as f64);
    for s in 0..SUBMITTERS as u64 {
        let (target, spec) = (target.clone(), spec.clone());
        let count = per_submitter.min(runs.saturating_sub(s * per_submitter));
        submitters.spawn(async move {
            let mut rpc = target.rpc.clone();
            let mut tick = tokio::time::interval(interval);
            let mut failed = Vec::new();
            for _ in 0..count {
                tick.tick().await;
                let request = SubmitRunRequest { spec: Some(spec.clone()), idempotency_key: String::new() };
                if let Err(e) = rpc.submit_run(target.request(request)).await {
                    failed.push(e.to_string());
                }
            }
            failed
        });
    }
    let mut errors = Vec::new();
    while let Some(done) = submitters.join_next().await {
        errors.extend(done?);
    }
    Ok(errors)
}

/// Redis's `used_memory`, bytes.
pub async fn used_memory(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO memory"))
}

/// Every run of the tenant: (admitted ms, last update ms, status).
pub async fn list_all(target: &Client) -> anyhow::Result<Vec<(i64, i64, RunStatus)>> {
    let (mut rpc, mut token, mut out) = (target.rpc.clone(), String::new(), Vec::new());
    loop {
        let request = ListRunsRequest { page_size: PAGE, page_token: token.clone(), ..ListRunsRequest::default() };
        let page = rpc.list_runs(target.request(request)).await?.into_inner();
        out.extend(page.runs.iter().map(|r| (r.created_at_ms, r.updated_at_ms, r.status())));
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

/// Runs the workload against `target`.
pub async fn run(target: &Client, w: &Parked) -> anyhow::Result<ParkedReport> {
    let started = Instant::now();
    let before = used_memory(&w.redis_url).await?;
    let mut errors = Vec::new();
    errors.extend(submit_at_rate(target, w.runs, w.rate, &spec(w.park, "parked")).await?);
    let submitted_in = started.elapsed();
    eprintln!("submitted {} runs in {submitted_in:.1?}", w.runs);
    anyhow::ensure!(
        submitted_in < w.park,
        "submitting took longer than the park ({submitted_in:?}): lower --runs or raise --park-secs"
    );
    // Every run has taken its wait step by now (a step takes milliseconds): all are parked.
    tokio::time::sleep(Duration::from_secs(5).min(w.park - submitted_in)).await;
    let runs = list_all(target).await?;
    let parked_at_peak = runs.iter().filter(|(_, _, s)| *s == RunStatus::Waiting).count() as u64;
    let at_peak = used_memory(&w.redis_url).await?;
    let bytes_per_parked_run = at_peak.saturating_sub(before) as f64 / parked_at_peak.max(1) as f64;
    eprintln!("{parked_at_peak} runs parked; Redis memory {before} → {at_peak} B");
    let park_ms = w.park.as_millis() as i64;
    let runs = loop {
        let runs = list_all(target).await?;
        let ended = runs.iter().filter(|(_, _, s)| baton_core::status::is_terminal(*s)).count() as u64;
        if ended >= w.runs || started.elapsed() > w.timeout {
            break runs;
        }
        eprintln!("{ended}/{} runs finished", w.runs);
        // Each look lists every run: at 100,000 runs that is load of its own, so look seldom
        // (the lateness comes from each run's own times, not from when it was seen).
        tokio::time::sleep(Duration::from_secs(if w.runs > 20_000 { 30 } else { 5 })).await;
    };
    let finished: Vec<_> = runs.iter().filter(|(_, _, s)| *s == RunStatus::Succeeded).collect();
    let late_ms = finished.iter().map(|(admitted, updated, _)| updated - admitted - park_ms).collect();
    if (finished.len() as u64) < w.runs {
        errors.push(format!("{} of {} runs did not succeed in time", w.runs - finished.len() as u64, w.runs));
    }
    Ok(ParkedReport {
        runs: w.runs,
        parked_at_peak,
        bytes_per_parked_run,
        finished: finished.len() as u64,
        late_ms,
        errors,
    })
}
