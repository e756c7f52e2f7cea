//! `baton-loadtest`: parse flags, connect one shared gRPC channel, run the workload, print the
//! report; the exit status says whether every run succeeded in time.

mod grpc;
mod report;
mod w1;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Load generator over Baton's gRPC API.
#[derive(Debug, Parser)]
#[command(
    name = "baton-loadtest",
    version,
    after_help = "Exit status: 0 every run succeeded; 1 a run did not succeed or the timeout hit; 2 setup error."
)]
struct Args {
    /// Gateway address.
    #[arg(long, env = "BATON_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Runs to submit.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    runs: u64,
    /// `echo` steps per run.
    #[arg(long, value_name = "K", default_value_t = 10)]
    steps: u32,
    /// Runs in flight at once.
    #[arg(long, value_name = "C", default_value_t = 64)]
    concurrency: usize,
    /// Tenant to submit as (sent in the `x-baton-tenant` header).
    #[arg(long, default_value = "loadtest")]
    tenant: String,
    /// Overall bound: stop and report after this long, finished or not.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the workload; `Ok(true)` when every run succeeded within the timeout.
async fn run(args: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.timeout_secs > 0, "--timeout-secs must be at least 1");
    let target = grpc::Target::connect(&args.addr, &args.tenant).await?;
    let workload = w1::W1 {
        runs: args.runs,
        steps: args.steps,
        concurrency: args.concurrency,
    };
    let report = w1::run(&target, &workload, Duration::from_secs(args.timeout_secs)).await?;
    println!("{}", report.render());
    Ok(report.passed())
}
