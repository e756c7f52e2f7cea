//! What a workload measured: outcomes per run, completed steps, and a latency histogram, printed
//! as a readable block and one machine-readable `RESULT` line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use baton_proto::v1::RunStatus;
use hdrhistogram::Histogram;

/// Highest latency the histogram tracks exactly (one day, in microseconds); longer is clamped.
const MAX_LATENCY_US: u64 = 24 * 60 * 60 * 1_000_000;

/// How one run ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The run reached this terminal status (its RUN_FINISHED event was received).
    Finished(RunStatus),
    /// The client gave up on the run after this gRPC error (label: `error:<CODE>`).
    Error(String),
}

/// One run's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub end: End,
    /// From the first SubmitRun attempt to the RUN_FINISHED event (or to the error).
    pub latency: Duration,
    /// STEP_COMPLETED events seen for the run.
    pub steps: u64,
    /// Why it did not succeed: the stop reason, or the gRPC error message. Empty on success.
    pub detail: String,
}

/// Accumulated results of one workload.
pub struct Report {
    title: String,
    planned: u64,
    ok: u64,
    failed: BTreeMap<String, u64>,
    /// The first detail seen for each failure label, so a systematic failure explains itself.
    first_detail: BTreeMap<String, String>,
    steps: u64,
    latency_us: Histogram<u64>,
    elapsed: Duration,
    timed_out: bool,
}

impl Report {
    /// An empty report for `planned` runs, headed by `title`.
    pub fn new(title: String, planned: u64) -> anyhow::Result<Self> {
        let latency_us = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?;
        Ok(Self {
            title,
            planned,
            ok: 0,
            failed: BTreeMap::new(),
            first_detail: BTreeMap::new(),
            steps: 0,
            latency_us,
            elapsed: Duration::ZERO,
            timed_out: false,
        })
    }

    /// Adds one run. Latency is recorded for every run that reached a terminal status.
    pub fn record(&mut self, outcome: Outcome) {
        self.steps += outcome.steps;
        let label = match outcome.end {
            End::Finished(status) => {
                self.latency_us.saturating_record((outcome.latency.as_micros() as u64).max(1));
                if status == RunStatus::Succeeded {
                    self.ok += 1;
                    return;
                }
                baton_core::status::name(status).to_string()
            }
            End::Error(label) => label,
        };
        if !outcome.detail.is_empty() {
            self.first_detail.entry(label.clone()).or_insert(outcome.detail);
        }
        *self.failed.entry(label).or_default() += 1;
    }

    /// Runs recorded so far, however they ended.
    pub fn done(&self) -> u64 {
        self.ok + self.failed.values().sum::<u64>()
    }

    /// Runs that succeeded so far.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Closes the report: how long the workload ran and whether its overall timeout hit.
    pub fn finish(&mut self, elapsed: Duration, timed_out: bool) {
        self.elapsed = elapsed;
        self.timed_out = timed_out;
    }

    /// True when every planned run succeeded within the timeout.
    pub fn passed(&self) -> bool {
        !self.timed_out && self.ok == self.planned
    }

    /// The readable block followed by the `RESULT` line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let failed = self.done() - self.ok;
        let unfinished = self.planned.saturating_sub(self.done());
        let _ = writeln!(out, "{}", self.title);
        let _ =
            writeln!(out, "runs        {} ok, {failed} failed, {unfinished} unfinished (of {})", self.ok, self.planned);
        if !self.failed.is_empty() {
            let by_name: Vec<String> = self.failed.iter().map(|(name, n)| format!("{name}={n}")).collect();
            let _ = writeln!(out, "failed      {}", by_name.join(" "));
            for (name, detail) in &self.first_detail {
                let _ = writeln!(out, "  first {name}: {detail}");
            }
        }
        if self.timed_out {
            let _ = writeln!(out, "timeout     hit after {:.1} s; unfinished runs were abandoned", self.secs());
        }
        let _ = writeln!(out, "elapsed     {:.3} s", self.secs());
        let _ = writeln!(out, "throughput  {:.1} runs/s, {:.1} steps/s", self.rate(self.ok), self.rate(self.steps));
        let _ = writeln!(
            out,
            "latency     p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} runs)",
            self.quantile_ms(0.5),
            self.quantile_ms(0.9),
            self.quantile_ms(0.99),
            self.max_ms(),
            self.latency_us.len()
        );
        out.push_str(&self.result_line());
        out
    }

    /// `RESULT runs=.. steps=.. elapsed_s=.. runs_per_s=.. steps_per_s=.. p50_ms=.. p90_ms=.. p99_ms=..`
    /// then `max_ms`, `failed`, `unfinished` and `timed_out`. `runs` counts succeeded runs; `steps`
    /// counts completed steps of all runs.
    pub fn result_line(&self) -> String {
        format!(
            "RESULT runs={} steps={} elapsed_s={:.3} runs_per_s={:.1} steps_per_s={:.1} p50_ms={:.1} p90_ms={:.1} \
             p99_ms={:.1} max_ms={:.1} failed={} unfinished={} timed_out={}",
            self.ok,
            self.steps,
            self.secs(),
            self.rate(self.ok),
            self.rate(self.steps),
            self.quantile_ms(0.5),
            self.quantile_ms(0.9),
            self.quantile_ms(0.99),
            self.max_ms(),
            self.done() - self.ok,
            self.planned.saturating_sub(self.done()),
            self.timed_out,
        )
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }

    fn rate(&self, count: u64) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            count as f64 / self.secs()
        }
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(end: End, ms: u64, steps: u64) -> Outcome {
        Outcome { end, latency: Duration::from_millis(ms), steps, detail: String::new() }
    }

    #[test]
    fn counts_and_result_line() {
        let mut r = Report::new("t".into(), 4).expect("histogram");
        r.record(outcome(End::Finished(RunStatus::Succeeded), 100, 10));
        r.record(outcome(End::Finished(RunStatus::Succeeded), 300, 10));
        r.record(outcome(End::Finished(RunStatus::TimedOut), 900, 3));
        let mut error = outcome(End::Error("error:UNAVAILABLE".into()), 5, 0);
        error.detail = "gateway restarting".into();
        r.record(error);
        r.finish(Duration::from_secs(2), false);
        assert_eq!(r.done(), 4);
        assert!(!r.passed());
        let line = r.result_line();
        assert!(line.starts_with("RESULT runs=2 steps=23 elapsed_s=2.000 runs_per_s=1.0 steps_per_s=11.5 "), "{line}");
        assert!(line.contains(" failed=2 unfinished=0 timed_out=false"), "{line}");
        let text = r.render();
        assert!(text.contains("failed      error:UNAVAILABLE=1 timed_out=1"), "{text}");
        assert!(text.contains("  first error:UNAVAILABLE: gateway restarting"), "{text}");
    }

    #[test]
    fn passes_only_when_all_planned_runs_succeeded_in_time() {
        let mut r = Report::new("t".into(), 1).expect("histogram");
        r.record(outcome(End::Finished(RunStatus::Succeeded), 10, 1));
        r.finish(Duration::from_millis(10), false);
        assert!(r.passed());
        r.finish(Duration::from_millis(10), true);
        assert!(!r.passed());
    }

    #[test]
    fn empty_report_renders() {
        let mut r = Report::new("t".into(), 3).expect("histogram");
        r.finish(Duration::ZERO, true);
        assert!(r.result_line().contains("p50_ms=0.0"));
        assert!(r.render().contains("0 ok, 0 failed, 3 unfinished"));
    }
}
