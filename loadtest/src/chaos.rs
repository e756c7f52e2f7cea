//! Chaos mode: runs `baton_testkit::chaos` (its own redis-server, tansu broker and service
//! processes, killed and restarted while runs go on), then prints its report, a `RESULT` line and
//! the verdict: no run lost, no ledger effect repeated after its commit, no history problem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_testkit::chaos::{ChaosConfig, ChaosReport};
use clap::Args;

/// Service binaries the chaos stack starts; they must sit next to `baton-loadtest`.
const SERVICES: [&str; 4] = ["baton-gateway", "baton-worker", "baton-scheduler", "baton-reaper"];
/// History problems printed in full; the rest are only counted.
const SHOWN_PROBLEMS: usize = 20;

/// Why a chaos scenario could not produce a report.
#[derive(Debug)]
pub enum Failure {
    /// Setup was wrong (missing binaries); nothing was started.
    Setup(anyhow::Error),
    /// The driver panicked (a process did not start, Redis unreachable, ...).
    Driver(String),
    /// Ctrl-C: the stack was torn down.
    Interrupted,
}

/// Checks the service binaries, runs the scenario, prints the report; `Ok(true)` when it passed.
pub async fn run(cfg: ChaosConfig) -> Result<bool, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::Setup(e.into()))?;
    missing_services(&exe).map_err(Failure::Setup)?;
    eprintln!("{}", describe(&cfg));
    let mut task = tokio::spawn(baton_testkit::chaos::run(cfg));
    let report = tokio::select! {
        joined = &mut task => joined.map_err(|e| Failure::Driver(panic_text(e)))?,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the driver drops its stack, which SIGKILLs every child process.
            task.abort();
            let _ = task.await;
            return Err(Failure::Interrupted);
        }
    };
    println!("{}", report.render());
    let problems: Vec<String> = report
        .failures
        .iter()
        .map(|f| format!("driver: {f}"))
        .chain(report.history_problems.iter().cloned())
        .chain(report.events_missing.iter().map(|e| format!("event {e} committed but not on baton.events")))
        .collect();
    for problem in problems.iter().take(SHOWN_PROBLEMS) {
        println!("problem: {problem}");
    }
    if problems.len() > SHOWN_PROBLEMS {
        println!("problem: ... and {} more", problems.len() - SHOWN_PROBLEMS);
    }
    println!("{}", result_line(&report));
    Ok(passed(&report))
}

/// Errors unless every service binary is beside `exe` (testkit's `bin_path` looks there first).
pub(crate) fn missing_services(exe: &Path) -> anyhow::Result<()> {
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let missing: Vec<PathBuf> = SERVICES.iter().map(|s| dir.join(s)).filter(|p| !p.is_file()).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "chaos mode starts the service binaries next to {}; missing: {}. Build them in the same profile first, \
         e.g. `cargo build --release --workspace --bins && target/release/baton-loadtest --mode chaos`",
        exe.display(),
        missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// One line on stderr saying what is about to happen.
fn describe(cfg: &ChaosConfig) -> String {
    format!(
        "baton-loadtest chaos: {} runs at {}/s, {} workers, a worker SIGKILLed every {:.1} s, control-plane kills {}, \
         infra restarts {}, flaky rate {}, settle bound {} s",
        cfg.runs,
        cfg.submit_per_sec,
        cfg.workers,
        cfg.kill_every.as_secs_f64(),
        on_off(cfg.kill_control_plane),
        on_off(cfg.restart_infra),
        cfg.flaky_rate,
        cfg.settle.as_secs()
    )
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// `RESULT mode=chaos runs=.. steps=.. kills=.. recoveries=.. duplicates=.. lost=.. recovery_p50_ms=..
/// recovery_p99_ms=..`, then `history_problems`, `ledger_repeats`, the event audit, approvals granted,
/// steps held by the upstream's breaker, driver failures and `elapsed_s`.
pub fn result_line(r: &ChaosReport) -> String {
    format!(
        "RESULT mode=chaos runs={} steps={} kills={} recoveries={} duplicates={} lost={} recovery_p50_ms={} \
         recovery_p99_ms={} history_problems={} ledger_repeats={} events={} events_missing={} approvals={} \
         breaker_holds={} driver_failures={} elapsed_s={:.1}",
        r.runs,
        r.steps,
        r.kills,
        r.recoveries,
        r.duplicates,
        r.lost,
        r.recovery_percentile(50.0),
        r.recovery_percentile(99.0),
        r.history_problems.len(),
        r.ledger_repeats,
        r.events,
        r.events_missing.len(),
        r.approvals,
        r.breaker_holds,
        r.failures.len(),
        r.elapsed.as_secs_f64()
    )
}

/// True when no run was lost, no ledger call ran after its commit, every history checked out,
/// every committed event reached `baton.events`, and the driver itself (submitter, auditor)
/// worked. Ledger repeats before a commit (a crash mid-step, same key) are allowed.
pub fn passed(r: &ChaosReport) -> bool {
    baton_testkit::chaos::passed(r)
}

/// The panic message of a failed driver task, or why it ended otherwise.
fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Flags of chaos mode (ignored by w1).
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// [chaos] Submissions per second.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub submit_per_sec: u32,
    /// [chaos] Worker processes kept running (one is SIGKILLed and replaced per round).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers: usize,
    /// [chaos] Seconds between worker kills.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub kill_every_secs: u64,
    /// [chaos] Also SIGKILL and restart Redis (AOF) and the broker midway.
    #[arg(long)]
    pub restart_infra: bool,
    /// [chaos] Do not kill the scheduler and the reaper (by default each is killed once, midway).
    #[arg(long)]
    pub no_control_plane_kills: bool,
    /// [chaos] Failure rate of the flaky step, 0 to 1.
    #[arg(long, value_name = "P", default_value_t = 0.2)]
    pub flaky_rate: f64,
    /// [chaos] Bound on waiting for every run to end after the chaos.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub settle_secs: u64,
    /// [chaos] Long runs of 30 short steps instead of the mixed workload: kills land mid-slice.
    #[arg(long)]
    pub long_runs: bool,
    /// [chaos] Races: a quarter of the runs are cancelled while stepping into a wait, a quarter
    /// dead-letter, and every other worker disruption is a stall past its liveness (SIGSTOP).
    #[arg(long)]
    pub races: bool,
    /// [chaos] Run on a Redis Cluster (3 primaries, a replica each) whose writes each wait for
    /// this many replicas (redis.min_replicas_acked; 0 trusts the primary alone).
    #[arg(long, value_name = "N")]
    pub cluster_replicas_acked: Option<u32>,
    /// [chaos] On a cluster: SIGKILL the primary of the busiest index shard midway; the cluster
    /// fails it over to its replica.
    #[arg(long)]
    pub kill_redis_primary: bool,
}

impl ChaosArgs {
    /// The driver's settings for `runs` runs, validated.
    pub fn config(&self, runs: u64) -> anyhow::Result<ChaosConfig> {
        anyhow::ensure!(runs > 0, "--runs must be at least 1");
        anyhow::ensure!(self.submit_per_sec > 0, "--submit-per-sec must be at least 1");
        anyhow::ensure!(self.workers > 0, "--workers must be at least 1");
        anyhow::ensure!(self.kill_every_secs > 0, "--kill-every-secs must be at least 1");
        anyhow::ensure!((0.0..=1.0).contains(&self.flaky_rate), "--flaky-rate must be between 0 and 1");
        anyhow::ensure!(self.settle_secs > 0, "--settle-secs must be at least 1");
        anyhow::ensure!(
            !self.kill_redis_primary || self.cluster_replicas_acked.is_some(),
            "--kill-redis-primary needs --cluster-replicas-acked (a Redis Cluster)"
        );
        Ok(ChaosConfig {
            runs: usize::try_from(runs)?,
            submit_per_sec: self.submit_per_sec,
            workers: self.workers,
            kill_every: Duration::from_secs(self.kill_every_secs),
            kill_control_plane: !self.no_control_plane_kills,
            restart_infra: self.restart_infra,
            flaky_rate: self.flaky_rate,
            settle: Duration::from_secs(self.settle_secs),
            long_runs: self.long_runs,
            races: self.races,
            cluster_replicas_acked: self.cluster_replicas_acked,
            kill_redis_primary: self.kill_redis_primary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ChaosReport {
        ChaosReport {
            runs: 10,
            steps: 60,
            kills: 4,
            recoveries: 3,
            recovery_ms: vec![1_200, 1_500, 4_000],
            ledger_repeats: 1,
            elapsed: Duration::from_millis(42_250),
            ..ChaosReport::default()
        }
    }

    #[test]
    fn result_line_has_every_count() {
        assert_eq!(
            result_line(&report()),
            "RESULT mode=chaos runs=10 steps=60 kills=4 recoveries=3 duplicates=0 lost=0 recovery_p50_ms=1500 \
             recovery_p99_ms=4000 history_problems=0 ledger_repeats=1 events=0 events_missing=0 approvals=0 \
             breaker_holds=0 driver_failures=0 elapsed_s=42.2"
        );
    }

    #[test]
    fn verdict() {
        assert!(passed(&report()));
        assert!(!passed(&ChaosReport { lost: 1, ..report() }));
        assert!(!passed(&ChaosReport { duplicates: 1, ..report() }));
        assert!(!passed(&ChaosReport { history_problems: vec!["r1: step 2 twice".into()], ..report() }));
        assert!(!passed(&ChaosReport { events_missing: vec!["r1:4".into()], ..report() }));
        assert!(!passed(&ChaosReport { failures: vec!["submit chaos-3: unavailable".into()], ..report() }));
    }

    fn args() -> ChaosArgs {
        ChaosArgs {
            submit_per_sec: 4,
            workers: 2,
            kill_every_secs: 3,
            restart_infra: false,
            no_control_plane_kills: true,
            flaky_rate: 0.2,
            settle_secs: 60,
            long_runs: false,
            races: false,
            cluster_replicas_acked: None,
            kill_redis_primary: false,
        }
    }

    #[test]
    fn config_is_validated() {
        let cfg = args().config(10).expect("valid");
        assert!(!cfg.kill_control_plane && !cfg.restart_infra);
        assert_eq!((cfg.runs, cfg.kill_every, cfg.settle), (10, Duration::from_secs(3), Duration::from_secs(60)));
        assert!(args().config(0).is_err());
        assert!(ChaosArgs { workers: 0, ..args() }.config(10).is_err());
        assert!(ChaosArgs { kill_every_secs: 0, ..args() }.config(10).is_err());
        assert!(ChaosArgs { flaky_rate: 1.5, ..args() }.config(10).is_err());
        assert!(ChaosArgs { flaky_rate: f64::NAN, ..args() }.config(10).is_err());
    }

    #[test]
    fn missing_binaries_are_named() {
        let e = missing_services(Path::new("/nonexistent/dir/baton-loadtest")).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/dir/baton-worker"), "{e}");
    }
}
