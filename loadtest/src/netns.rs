//! Netns mode: the fleet across Linux network namespaces (`baton_testkit::netns`; needs root):
//! the link faults (a worker cut off from Redis mid-step, a worker cut off from the broker, the
//! gateway cut off from the broker), then W1 on a fleet without faults and on one with latency and
//! loss between the workers and Redis. Prints each report; passes when no promise was broken.

use std::time::Duration;

use baton_testkit::netns::{scenarios, Fleet, FleetOptions, Report};

/// What the W1 part runs.
pub struct Netns {
    /// Runs per W1 series.
    pub runs: usize,
    /// `echo` steps per run.
    pub steps: usize,
    /// Runs in flight.
    pub concurrency: usize,
    /// Latency added each way between the workers and Redis.
    pub delay: Duration,
    /// Percentage of packets dropped between the workers and Redis.
    pub loss_percent: u8,
}

/// Runs every scenario, each on a fresh fleet; `Ok(true)` when all passed.
pub async fn run(w: &Netns) -> anyhow::Result<bool> {
    let exe = std::env::current_exe()?;
    crate::chaos::missing_services(&exe)?;
    let mut reports: Vec<Report> = Vec::new();
    let fleet = start("netns-cuts", FleetOptions::default()).await?;
    for report in [
        scenarios::worker_cut_from_redis(&fleet).await,
        scenarios::worker_cut_from_broker(&fleet).await,
        scenarios::gateway_cut_from_broker(&fleet).await,
    ] {
        show(&report);
        reports.push(report);
    }
    drop(fleet);
    let fleet = start("netns-w1", FleetOptions::default()).await?;
    let report = scenarios::w1(&fleet, "no faults", w.runs, w.steps, w.concurrency).await;
    show(&report);
    reports.push(report);
    drop(fleet);
    let fleet = start("netns-lossy", FleetOptions { worker_redis_delay: w.delay, ..FleetOptions::default() }).await?;
    let relay = fleet.relay.as_ref().map(|r| r.addr).ok_or_else(|| anyhow::anyhow!("the lossy fleet has no relay"))?;
    for worker in &fleet.workers {
        fleet
            .hosts()
            .lossy(&worker.host, fleet.hosts().local_ip(), relay.port(), w.loss_percent)
            .map_err(anyhow::Error::msg)?;
    }
    let label = format!("+{} ms each way, {} % loss, workers to Redis", w.delay.as_millis(), w.loss_percent);
    let report = scenarios::w1(&fleet, &label, w.runs, w.steps, w.concurrency).await;
    show(&report);
    reports.push(report);
    Ok(reports.iter().all(|r| r.problems.is_empty()))
}

/// Prints a report at once (stdout to a file is block-buffered).
fn show(report: &Report) {
    use std::io::Write as _;
    print!("{report}");
    let _ = std::io::stdout().flush();
}

async fn start(label: &str, opts: FleetOptions) -> anyhow::Result<Fleet> {
    Fleet::start(label, opts).await.map_err(|e| anyhow::anyhow!("cannot start the fleet across namespaces: {e}"))
}
