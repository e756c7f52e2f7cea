//! `baton-loadtest`: parse flags, then either connect one shared gRPC channel and run workload
//! W1 (default: many short runs), W2 (one long run) or `watch` (the request path's latency with
//! many watches open), or start a private stack for W3 (one long model run against a scripted
//! model) or the chaos scenario; print the report; the exit status says whether the mode's check
//! passed.

mod approvals;
mod chaos;
mod grpc;
mod netns;
mod parked;
mod report;
mod w1;
mod w2;
mod w3;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// `--runs` in w1 mode when not given.
const W1_RUNS: u64 = 2000;
/// `--runs` in chaos mode when not given (50 s of submissions at the default 4/s).
const CHAOS_RUNS: u64 = 200;
/// `--runs` in parked mode when not given.
const PARKED_RUNS: u64 = 10_000;
/// `--runs` per W1 series in netns mode when not given.
const NETNS_RUNS: u64 = 400;
/// `--steps` in w1 mode when not given.
const W1_STEPS: u32 = 10;
/// `--steps` in w2 mode when not given.
const W2_STEPS: u32 = 5000;
/// `--steps` in w3 mode when not given.
const W3_STEPS: u32 = 1000;
/// `--window` in w2 mode when not given.
const W2_WINDOW: u32 = 500;
/// `--window` in w3 mode when not given.
const W3_WINDOW: u32 = 100;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Steady throughput against a running gateway at --addr.
    W1,
    /// One long run against --addr: the cost of a step must not grow with the run's length.
    W2,
    /// One long model run on a private stack (scripted model server in-process, the service
    /// binaries next to this executable): the request sent to the model and what a claim reads
    /// must not grow with the run's length.
    W3,
    /// SubmitRun and GetRun latency against --addr with no watch open, then with --watches open.
    Watch,
    /// Runs parked on a timer against --addr: Redis memory per parked run at the peak, then how
    /// late each run ends after its wake-up (needs --redis-url).
    Parked,
    /// Runs parked on an approval against --addr (the `ledger` tool made to require one):
    /// Redis memory per parked run, then ListApprovals paged through all of them (needs
    /// --redis-url).
    Approvals,
    /// Start a private stack (redis-server, tansu, the service binaries next to this executable),
    /// break it while runs go on, then audit every run.
    Chaos,
    /// Start the fleet across Linux network namespaces (needs root), cut links between hosts and
    /// check what must hold, then W1 without faults and with latency and loss between the
    /// workers and Redis (--runs, --steps, --concurrency, --delay-ms, --loss-percent).
    Netns,
}

/// Load generator over Baton's gRPC API.
#[derive(Debug, Parser)]
#[command(
    name = "baton-loadtest",
    version,
    after_help = "Exit status: 0 passed; 1 failed (w1: a run did not succeed or the timeout hit; chaos: a run \
                  was lost, a ledger effect ran after its commit, or a history problem); 2 setup error; 130 \
                  interrupted.\n\nChaos mode needs redis-server and tansu (scripts/install-deps.sh) and the service \
                  binaries built in the same profile: `cargo build --release --workspace --bins && \
                  target/release/baton-loadtest --mode chaos`. Set BATON_KEEP_TEST_DIRS=1 to keep its logs."
)]
struct Args {
    /// Workload: w1 (steady throughput against --addr), w2 (one long run), watch (latency with
    /// watches open) or chaos (own stack, kills, audit).
    #[arg(long, value_enum, default_value_t = Mode::W1)]
    mode: Mode,
    /// [w1, w2, watch] Gateway address.
    #[arg(long, env = "BATON_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Runs to submit (default: 2000 in w1, 200 in chaos).
    #[arg(long, value_name = "N")]
    runs: Option<u64>,
    /// [w1, w2, w3] `echo` steps per run (default: 10 in w1, 5000 in w2, 1000 in w3).
    #[arg(long, value_name = "K")]
    steps: Option<u32>,
    /// [w2, w3] Bytes of each step's output.
    #[arg(long, value_name = "B", default_value_t = 1024)]
    output_bytes: usize,
    /// [w2, w3] Steps compared at the start and at the end of the run (default: 500 in w2; in
    /// w3, 100: steps 100..200 against the last 100).
    #[arg(long, value_name = "N")]
    window: Option<u32>,
    /// [w3] The model endpoint's history_recent_steps.
    #[arg(long, value_name = "N", default_value_t = baton_config::DEFAULT_HISTORY_RECENT_STEPS)]
    history_recent_steps: u32,
    /// [w3] The model endpoint's history_budget_tokens.
    #[arg(long, value_name = "TOKENS", default_value_t = baton_config::DEFAULT_HISTORY_BUDGET_TOKENS)]
    history_budget_tokens: u64,
    /// [w3] The model endpoint's history_max_steps (also what a claim reads).
    #[arg(long, value_name = "N", default_value_t = baton_config::DEFAULT_HISTORY_MAX_STEPS)]
    history_max_steps: u32,
    /// [parked, approvals] Submissions per second.
    #[arg(long, value_name = "N", default_value_t = 500)]
    rate: u64,
    /// [parked] How long each run waits on its timer; must outlast the submissions.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    park_secs: u64,
    /// [w2, parked, approvals] Redis of the stack, to report memory (e.g. redis://127.0.0.1:16379).
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
    /// [watch] Runs parked on a timer, one WatchRun open on each.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    watches: usize,
    /// [watch] SubmitRun and GetRun calls timed with no watch open, and again with all open.
    #[arg(long, value_name = "N", default_value_t = 200)]
    samples: usize,
    /// [w1] Runs in flight at once.
    #[arg(long, value_name = "C", default_value_t = 64)]
    concurrency: usize,
    /// [w1, w2, watch] Tenant to submit as (sent in the `x-baton-tenant` header).
    #[arg(long, default_value = "loadtest")]
    tenant: String,
    /// [w1, w3] Overall bound: stop and report after this long, finished or not (w3: fail).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    timeout_secs: u64,
    /// [netns] Latency added each way between the workers and Redis, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10)]
    delay_ms: u64,
    /// [netns] Percentage of the packets between the workers and Redis dropped.
    #[arg(long, value_name = "P", default_value_t = 1)]
    loss_percent: u8,
    /// Chaos mode's flags.
    #[command(flatten)]
    chaos: chaos::ChaosArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.mode == Mode::Chaos {
        return run_chaos(args).await;
    }
    if args.mode == Mode::W3 {
        return run_w3(args).await;
    }
    if args.mode == Mode::Netns {
        return run_netns(args).await;
    }
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the chaos scenario and maps its outcome to the exit status.
async fn run_chaos(args: Args) -> ExitCode {
    let cfg = match args.chaos.config(args.runs.unwrap_or(CHAOS_RUNS)) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match chaos::run(cfg).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(chaos::Failure::Setup(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(chaos::Failure::Driver(message)) => {
            eprintln!("error: chaos driver failed: {message}");
            ExitCode::from(2)
        }
        Err(chaos::Failure::Interrupted) => {
            eprintln!("interrupted: the chaos stack was stopped");
            ExitCode::from(130)
        }
    }
}

/// Runs the network-fault scenarios and W1 across namespaces; maps the outcome to the exit status.
async fn run_netns(args: Args) -> ExitCode {
    let workload = netns::Netns {
        runs: args.runs.unwrap_or(NETNS_RUNS) as usize,
        steps: args.steps.unwrap_or(W1_STEPS) as usize,
        concurrency: args.concurrency.max(1),
        delay: Duration::from_millis(args.delay_ms),
        loss_percent: args.loss_percent.min(100),
    };
    let outcome = tokio::select! {
        outcome = netns::run(&workload) => outcome,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the fleet SIGKILLs its processes and removes its namespaces.
            eprintln!("interrupted: the fleet was stopped");
            return ExitCode::from(130);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs W3 on its own stack and maps its outcome to the exit status.
async fn run_w3(args: Args) -> ExitCode {
    let workload = w3::W3 {
        steps: args.steps.unwrap_or(W3_STEPS),
        output_bytes: args.output_bytes,
        window: args.window.unwrap_or(W3_WINDOW),
        recent_steps: args.history_recent_steps,
        budget_tokens: args.history_budget_tokens,
        max_steps: args.history_max_steps,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    if let Err(e) = workload.check() {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let outcome = tokio::select! {
        outcome = w3::run(&workload) => outcome,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the run drops its stack, which SIGKILLs every child process.
            eprintln!("interrupted: the w3 stack was stopped");
            return ExitCode::from(130);
        }
    };
    match outcome {
        Ok(report) => {
            println!("{}", report.render());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the workload; `Ok(true)` when every run succeeded within the timeout.
async fn run(args: Args) -> anyhow::Result<bool> {
    let target = batonctl::client::Client::connect(&args.addr, &args.tenant).await?;
    if args.mode == Mode::W2 {
        let steps = args.steps.unwrap_or(W2_STEPS);
        anyhow::ensure!(steps >= 4, "--steps must be at least 4 in w2");
        let window = args.window.unwrap_or(W2_WINDOW).max(1) as usize;
        let workload = w2::W2 { steps, output_bytes: args.output_bytes, window };
        let report = w2::run(&target, &workload, args.redis_url.as_deref()).await?;
        println!("{}", report.render());
        return Ok(report.passed());
    }
    if args.mode == Mode::Watch {
        anyhow::ensure!(args.watches > 0 && args.samples > 0, "--watches and --samples must be at least 1");
        let workload = watch::Watch {
            addr: args.addr.clone(),
            tenant: args.tenant.clone(),
            watches: args.watches,
            samples: args.samples,
        };
        let report = watch::run(&target, &workload).await?;
        println!("{}", report.render());
        return Ok(report.passed());
    }
    if args.mode == Mode::Approvals {
        let redis_url = args.redis_url.clone().ok_or_else(|| anyhow::anyhow!("approvals mode needs --redis-url"))?;
        anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
        let workload = approvals::Approvals {
            runs: args.runs.unwrap_or(PARKED_RUNS),
            rate: args.rate,
            redis_url,
            timeout: Duration::from_secs(args.timeout_secs),
        };
        let report = approvals::run(&target, &workload).await?;
        println!("{}", report.render());
        return Ok(report.passed());
    }
    if args.mode == Mode::Parked {
        let redis_url = args.redis_url.clone().ok_or_else(|| anyhow::anyhow!("parked mode needs --redis-url"))?;
        anyhow::ensure!(args.rate > 0 && args.park_secs > 0, "--rate and --park-secs must be at least 1");
        let workload = parked::Parked {
            runs: args.runs.unwrap_or(PARKED_RUNS),
            rate: args.rate,
            park: Duration::from_secs(args.park_secs),
            redis_url,
            timeout: Duration::from_secs(args.timeout_secs),
        };
        let report = parked::run(&target, &workload).await?;
        println!("{}", report.render());
        return Ok(report.passed());
    }
    let runs = args.runs.unwrap_or(W1_RUNS);
    let steps = args.steps.unwrap_or(W1_STEPS);
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    anyhow::ensure!(steps > 0, "--steps must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.timeout_secs > 0, "--timeout-secs must be at least 1");
    let workload = w1::W1 { runs, steps, concurrency: args.concurrency };
    let report = w1::run(&target, &workload, Duration::from_secs(args.timeout_secs)).await?;
    println!("{}", report.render());
    Ok(report.passed())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn default_mode_is_w1() {
        let args = Args::try_parse_from(["baton-loadtest"]).expect("parses");
        assert_eq!(args.mode, Mode::W1);
        assert_eq!(args.runs.unwrap_or(W1_RUNS), 2000);
        assert_eq!((args.steps.unwrap_or(W1_STEPS), args.concurrency, args.timeout_secs), (10, 64, 600));
    }

    #[test]
    fn w3_defaults_are_bounded() {
        let args = Args::try_parse_from(["baton-loadtest", "--mode", "w3"]).expect("parses");
        assert_eq!(args.mode, Mode::W3);
        assert_eq!((args.steps.unwrap_or(W3_STEPS), args.window.unwrap_or(W3_WINDOW)), (1000, 100));
        assert_eq!((args.history_recent_steps, args.history_budget_tokens, args.history_max_steps), (10, 4000, 50));
    }

    #[test]
    fn watch_defaults_are_bounded() {
        let args = Args::try_parse_from(["baton-loadtest", "--mode", "watch"]).expect("parses");
        assert_eq!((args.mode, args.watches, args.samples), (Mode::Watch, 1000, 200));
    }

    #[test]
    fn parked_defaults_are_bounded() {
        let args = Args::try_parse_from(["baton-loadtest", "--mode", "parked"]).expect("parses");
        assert_eq!(
            (args.mode, args.runs.unwrap_or(PARKED_RUNS), args.rate, args.park_secs),
            (Mode::Parked, 10_000, 500, 60)
        );
    }

    #[test]
    fn chaos_flags() {
        let argv = ["baton-loadtest", "--mode", "chaos", "--runs", "10", "--restart-infra", "--no-control-plane-kills"];
        let args =
            Args::try_parse_from(argv.iter().chain(&["--flaky-rate", "0.5", "--settle-secs", "60"])).expect("parses");
        assert_eq!(args.mode, Mode::Chaos);
        let cfg = args.chaos.config(args.runs.unwrap_or(CHAOS_RUNS)).expect("valid");
        assert_eq!((cfg.runs, cfg.submit_per_sec, cfg.workers), (10, 4, 2));
        assert!(cfg.restart_infra && !cfg.kill_control_plane);
        assert_eq!((cfg.flaky_rate, cfg.settle.as_secs(), cfg.kill_every.as_secs()), (0.5, 60, 3));
    }
}
