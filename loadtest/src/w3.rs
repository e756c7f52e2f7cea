//! Workload W3 (one long model run): one run of K steps proposed by the scripted
//! OpenAI-compatible model server (`baton_testkit::model_server`, in this process) on a private
//! stack of its own, like chaos mode (redis-server, tansu and the service binaries next to this
//! executable). Every step is claimed afresh (`worker.slice_max_steps = 1`), the worst case for
//! claims. It shows that what a model run sends and reads per step does not grow with the run:
//! the request body sent to the model (bounded by the endpoint's history policy) and what a
//! claim reads (`baton_worker_claim_bytes`: the latest `history_max_steps` step records, never
//! the whole list) and takes — in the worker (`baton_worker_phase_seconds{phase="claim"}`: the
//! claim script, the in-flight index and the worker's run set, round trips included) and inside
//! Redis (the claim script's own execution time, from `SLOWLOG` with a threshold of 0) —
//! compared over the steps `[window, 2·window)` and the last `window` steps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton_proto::v1::{Budget, GetRunRequest, RunStatus, SubmitRunRequest};
use baton_testkit::model_server::{ModelServer, Reply};
use baton_testkit::{Stack, StackOptions};

/// The goal of the one run (the model server's script key).
const GOAL: &str = "baton-loadtest w3: call echo until told otherwise";

/// The shape of a W3 workload.
#[derive(Debug, Clone)]
pub struct W3 {
    /// Steps of the run (each one model call and one `echo`).
    pub steps: u32,
    /// Bytes of padding in each call's arguments (echo returns them: the step's result size).
    pub output_bytes: usize,
    /// Steps compared at each end.
    pub window: u32,
    /// The endpoint's `history_recent_steps`.
    pub recent_steps: u32,
    /// The endpoint's `history_budget_tokens`.
    pub budget_tokens: u64,
    /// The endpoint's `history_max_steps` (the claim's window).
    pub max_steps: u32,
    /// Bound on the whole run.
    pub timeout: Duration,
}

/// What one window of steps cost, on average per step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// First step of the window.
    pub from: u32,
    /// One past its last step.
    pub to: u32,
    /// Bytes of the request body sent to the model.
    pub request_bytes: f64,
    /// Messages in that request.
    pub request_messages: f64,
    /// Bytes of run state a claim read.
    pub claim_bytes: f64,
    /// Time of the claim phase (Lua claim, in-flight index, worker set), ms.
    pub claim_ms: f64,
    /// Time Redis spent executing the claim script, µs.
    pub claim_redis_us: f64,
    /// Claims per step (1 with one step per slice).
    pub claims_per_step: f64,
}

/// What W3 measured.
#[derive(Debug, Clone)]
pub struct W3Report {
    /// The run's final status.
    pub status: RunStatus,
    /// Its stop reason, `code: message`.
    pub stop: String,
    /// Steps recorded.
    pub steps: u32,
    /// Submit to finished.
    pub elapsed: Duration,
    /// Steps `[window, 2·window)`.
    pub first: Window,
    /// The last `window` steps.
    pub last: Window,
    /// The settings measured.
    pub workload: W3,
}

/// One reading of the worker's claim metrics while the run went on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    steps: u32,
    claims: f64,
    claim_bytes: f64,
    claim_secs: f64,
}

impl W3Report {
    /// The report as text with a `RESULT` line.
    pub fn render(&self) -> String {
        let w = &self.workload;
        let row = |name: &str, x: &Window| {
            format!(
                "  {name:<6} steps {:>4}..{:<4} request {:>8.0} B ({:>5.1} messages)   claim {:>8.0} B, {:>6.3} ms in \
                 the worker, {:>5.0} µs in Redis ({:.2} claims/step)",
                x.from,
                x.to,
                x.request_bytes,
                x.request_messages,
                x.claim_bytes,
                x.claim_ms,
                x.claim_redis_us,
                x.claims_per_step
            )
        };
        let ratio = |a: f64, b: f64| if a > 0.0 { b / a } else { 0.0 };
        format!(
            "baton-loadtest w3: one model run, {} {} steps in {:.1} s ({}); history_recent_steps={} \
             history_budget_tokens={} history_max_steps={}, ~{} B per step's result, one step per claim\n{}\n{}\n\
             last/first: request bytes {:.2}, claim bytes {:.2}, claim time {:.2} (worker), {:.2} (Redis)\n\
             RESULT mode=w3 steps={} elapsed_s={:.1} first_request_bytes={:.0} last_request_bytes={:.0} \
             request_ratio={:.2} first_claim_bytes={:.0} last_claim_bytes={:.0} claim_bytes_ratio={:.2} \
             first_claim_ms={:.3} last_claim_ms={:.3} claim_ms_ratio={:.2} first_claim_redis_us={:.0} \
             last_claim_redis_us={:.0} claim_redis_ratio={:.2}",
            baton_core::status::name(self.status),
            self.steps,
            self.elapsed.as_secs_f64(),
            self.stop,
            w.recent_steps,
            w.budget_tokens,
            w.max_steps,
            w.output_bytes,
            row("first", &self.first),
            row("last", &self.last),
            ratio(self.first.request_bytes, self.last.request_bytes),
            ratio(self.first.claim_bytes, self.last.claim_bytes),
            ratio(self.first.claim_ms, self.last.claim_ms),
            ratio(self.first.claim_redis_us, self.last.claim_redis_us),
            self.steps,
            self.elapsed.as_secs_f64(),
            self.first.request_bytes,
            self.last.request_bytes,
            ratio(self.first.request_bytes, self.last.request_bytes),
            self.first.claim_bytes,
            self.last.claim_bytes,
            ratio(self.first.claim_bytes, self.last.claim_bytes),
            self.first.claim_ms,
            self.last.claim_ms,
            ratio(self.first.claim_ms, self.last.claim_ms),
            self.first.claim_redis_us,
            self.last.claim_redis_us,
            ratio(self.first.claim_redis_us, self.last.claim_redis_us),
        )
    }

    /// Passed: the run succeeded with every step, and what a step sends to the model and reads
    /// per claim at the end is within 1.25× of what it was at the start (sizes, not speed: the
    /// claim time is reported, not judged).
    pub fn passed(&self) -> bool {
        let flat = |a: f64, b: f64| a > 0.0 && b <= 1.25 * a;
        self.status == RunStatus::Succeeded
            && self.steps == self.workload.steps
            && flat(self.first.request_bytes, self.last.request_bytes)
            && flat(self.first.claim_bytes, self.last.claim_bytes)
    }
}

impl W3 {
    /// Checks the settings: a run long enough for two windows, a valid history policy.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.window >= 1, "--window must be at least 1");
        anyhow::ensure!(self.steps >= 3 * self.window, "--steps must be at least 3 × --window in w3");
        anyhow::ensure!(self.steps < 10_000, "--steps must be below 10000 (runs.ceiling_max_steps)");
        anyhow::ensure!(
            (1..=self.max_steps).contains(&self.recent_steps) && self.max_steps <= baton_config::MAX_HISTORY_STEPS,
            "--history-recent-steps must be 1..=--history-max-steps, and that at most {}",
            baton_config::MAX_HISTORY_STEPS
        );
        Ok(())
    }

    fn config_toml(&self, base_url: &str) -> String {
        format!(
            "[models.bench]\nbase_url = \"{base_url}\"\nmodel = \"scripted\"\ntimeout_ms = 10000\n\
             history_recent_steps = {}\nhistory_budget_tokens = {}\nhistory_max_steps = {}\n",
            self.recent_steps, self.budget_tokens, self.max_steps
        )
    }

    fn replies(&self) -> Vec<Reply> {
        let pad = "x".repeat(self.output_bytes);
        let calls = (0..self.steps).map(|i| Reply::call("echo", &format!(r#"{{"step":{i},"pad":"{pad}"}}"#)));
        calls.chain([Reply::text("done")]).collect()
    }
}

/// Starts the stack and the model server, runs W3, stops everything.
pub async fn run(w: &W3) -> anyhow::Result<W3Report> {
    let exe = std::env::current_exe()?;
    crate::chaos::missing_services(&exe)?;
    let model = ModelServer::start(0).await?;
    model.script(GOAL, w.replies());
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_WORKER_SLICE_MAX_STEPS".into(), "1".into()));
    opts.env.push(("BATON_TELEMETRY_LOG_LEVEL".into(), "warn".into()));
    opts.config_toml = w.config_toml(&model.base_url());
    let mut stack = Stack::infra("loadtest-w3", opts).await;
    stack.start_gateway().await;
    let worker = stack.start("worker").await;
    stack.start("scheduler").await;
    stack.start("reaper").await;
    let mut redis = redis::Client::open(stack.redis.url())?.get_multiplexed_async_connection().await?;
    // Every command is logged with its execution time; read (and cleared) as the run goes on.
    for (key, value) in [("slowlog-log-slower-than", "0"), ("slowlog-max-len", "100000")] {
        redis::cmd("CONFIG").arg("SET").arg(key).arg(value).exec_async(&mut redis).await?;
    }
    let mut claims_in_redis: BTreeMap<u32, u64> = BTreeMap::new();
    let mut client = stack.client().await;
    let mut spec = baton_core::plan::model_spec("bench", GOAL, &["echo"]);
    spec.budget = Some(Budget {
        max_steps: w.steps + 1,
        max_tool_calls: w.steps,
        max_tokens: u64::from(w.steps + 1) * 1_000,
        ..Budget::default()
    });
    let started = Instant::now();
    let run_id = client
        .submit_run(SubmitRunRequest { spec: Some(spec), idempotency_key: String::new() })
        .await?
        .into_inner()
        .run_id;
    eprintln!("baton-loadtest w3: run {run_id}, {} steps, stack in {}", w.steps, stack.dir.path().display());
    let mut samples = Vec::new();
    let (status, stop) = loop {
        let run = client.get_run(GetRunRequest { run_id: run_id.clone(), latest_steps: 0 }).await?.into_inner();
        let mut sample = claim_sample(&stack.metrics(worker).await);
        sample.steps = run.steps_completed;
        samples.push(sample);
        let (log, ()): (redis::Value, ()) = redis::pipe()
            .atomic()
            .cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .cmd("SLOWLOG")
            .arg("RESET")
            .query_async(&mut redis)
            .await?;
        for (step, micros) in claim_scripts(&log) {
            *claims_in_redis.entry(step).or_default() += micros;
        }
        if baton_core::status::is_terminal(run.status()) {
            let stop = run.stop_reason.as_ref().map(|r| format!("{}: {}", r.code, r.message)).unwrap_or_default();
            break (run.status(), stop);
        }
        anyhow::ensure!(started.elapsed() < w.timeout, "w3: the run did not end within {:?}", w.timeout);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    let requests: Vec<(usize, usize)> = model
        .requests(GOAL)
        .iter()
        .map(|body| (body.to_string().len(), body["messages"].as_array().map_or(0, Vec::len)))
        .collect();
    let steps = samples.last().map_or(0, |s| s.steps);
    let first = window(&requests, &samples, &claims_in_redis, w.window, 2 * w.window);
    let last = window(&requests, &samples, &claims_in_redis, w.steps - w.window, w.steps);
    drop(stack);
    Ok(W3Report { status, stop, steps, elapsed, first, last, workload: w.clone() })
}

/// Means over steps `from..to`: the requests of those steps (request `i` proposed step `i`), the
/// claims made between the first reading at or past `from` and the first at or past `to`, and
/// the claim scripts Redis ran for those steps.
fn window(
    requests: &[(usize, usize)],
    samples: &[Sample],
    in_redis: &BTreeMap<u32, u64>,
    from: u32,
    to: u32,
) -> Window {
    let redis_steps: Vec<u64> = in_redis.range(from..to).map(|(_, us)| *us).collect();
    let claim_redis_us = redis_steps.iter().sum::<u64>() as f64 / redis_steps.len().max(1) as f64;
    let span = requests.get(from as usize..(to as usize).min(requests.len())).unwrap_or_default();
    let n = span.len().max(1) as f64;
    let mean = |f: fn(&(usize, usize)) -> usize| span.iter().map(|r| f(r) as f64).sum::<f64>() / n + 0.0;
    let at = |step: u32| samples.iter().find(|s| s.steps >= step).or(samples.last()).copied().unwrap_or_default();
    let (a, b) = (at(from), at(to));
    let claims = (b.claims - a.claims).max(1.0);
    Window {
        from,
        to,
        request_bytes: mean(|r| r.0),
        request_messages: mean(|r| r.1),
        claim_bytes: (b.claim_bytes - a.claim_bytes) / claims,
        claim_ms: (b.claim_secs - a.claim_secs) * 1000.0 / claims,
        claim_redis_us,
        claims_per_step: claims / f64::from(b.steps.saturating_sub(a.steps).max(1)),
    }
}

/// The claim scripts in a `SLOWLOG GET` reply: (step claimed, execution time in µs). A claim is
/// an `EVALSHA` of 6 keys whose 4th is the run's spec (`lua/claim.lua`); its first argument is
/// the step.
fn claim_scripts(log: &redis::Value) -> Vec<(u32, u64)> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    let redis::Value::Array(entries) = log else { return Vec::new() };
    entries
        .iter()
        .filter_map(|entry| {
            let redis::Value::Array(fields) = entry else { return None };
            let (Some(redis::Value::Int(micros)), Some(redis::Value::Array(args))) = (fields.get(2), fields.get(3))
            else {
                return None;
            };
            let args: Vec<String> = args.iter().map(text).collect();
            let claim = args.len() > 9
                && args[0].eq_ignore_ascii_case("evalsha")
                && args[2] == "6"
                && args[6].starts_with("baton:spec:");
            claim.then(|| Some((args[9].parse().ok()?, u64::try_from(*micros).ok()?)))?
        })
        .collect()
}

/// The worker's claim counters from its `/metrics` text.
fn claim_sample(metrics: &str) -> Sample {
    let value = |name: &str, label: Option<&str>| -> f64 {
        metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (key, v) = l.rsplit_once(' ')?;
                let (metric, labels) = key.split_once('{').unwrap_or((key, ""));
                (metric == name && label.is_none_or(|want| labels.contains(want))).then(|| v.parse::<f64>().ok())?
            })
            .sum()
    };
    Sample {
        steps: 0,
        claims: value("baton_worker_claim_bytes_count", None),
        claim_bytes: value("baton_worker_claim_bytes_sum", None),
        claim_secs: value("baton_worker_phase_seconds_sum", Some("phase=\"claim\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_counters_are_read_from_the_metrics_text() {
        let text = "# TYPE baton_worker_claim_bytes histogram\nbaton_worker_claim_bytes_bucket{le=\"1024\"} 3\n\
                    baton_worker_claim_bytes_sum 4096\nbaton_worker_claim_bytes_count 4\n\
                    baton_worker_phase_seconds_sum{phase=\"commit\"} 9\nbaton_worker_phase_seconds_sum{phase=\"claim\"} 0.5\n";
        let s = claim_sample(text);
        assert_eq!((s.claims, s.claim_bytes, s.claim_secs), (4.0, 4096.0, 0.5));
    }

    #[test]
    fn a_window_averages_its_requests_and_the_claims_between_its_readings() {
        let requests: Vec<(usize, usize)> = (0..10).map(|i| (100 + i, 3)).collect();
        let samples = [
            Sample { steps: 0, claims: 0.0, claim_bytes: 0.0, claim_secs: 0.0 },
            Sample { steps: 4, claims: 4.0, claim_bytes: 400.0, claim_secs: 0.004 },
            Sample { steps: 8, claims: 8.0, claim_bytes: 1200.0, claim_secs: 0.012 },
        ];
        let in_redis: BTreeMap<u32, u64> = (0..10).map(|s| (s, u64::from(s) * 10)).collect();
        let w = window(&requests, &samples, &in_redis, 4, 8);
        assert_eq!((w.request_bytes, w.request_messages), (105.5, 3.0));
        assert_eq!((w.claim_bytes, w.claim_ms, w.claims_per_step), (200.0, 2.0, 1.0));
        assert_eq!(w.claim_redis_us, 55.0);
    }

    #[test]
    fn claim_scripts_are_picked_out_of_the_slowlog() {
        use redis::Value::{Array, BulkString, Int};
        let arg = |s: &str| BulkString(s.as_bytes().to_vec());
        let keys = |fourth: &str| {
            [
                "EVALSHA",
                "abc",
                "6",
                "baton:run:{r}",
                "baton:lease:{r}",
                "baton:fence:{r}",
                fourth,
                "k5",
                "k6",
                "42",
                "0",
            ]
            .map(arg)
            .to_vec()
        };
        let log = Array(vec![
            Array(vec![Int(1), Int(0), Int(37), Array(keys("baton:spec:{r}"))]),
            Array(vec![Int(2), Int(0), Int(90), Array(keys("baton:events:{r}"))]),
            Array(vec![Int(3), Int(0), Int(5), Array(vec![arg("ZADD"), arg("baton:inflight")])]),
        ]);
        assert_eq!(claim_scripts(&log), vec![(42, 37)]);
    }
}
