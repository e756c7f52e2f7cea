//! The chaos driver: a mixed workload (echo, sleep, ledger, a flaky tool, an HTTP tool whose
//! upstream fails in bursts and trips its circuit breaker, and runs whose ledger effect waits
//! for an approval that the driver grants like a person would) submitted over gRPC while
//! workers are SIGKILLed and restarted, the scheduler and reaper are killed, and optionally
//! Redis and the broker restart. Then it audits every run: terminal (or waiting), each step
//! committed once and in order with its `<run>:<step>` key, no ledger effect executed after its
//! commit, every approval request answered once, and every committed event on `baton.events`. The submitter behaves like a
//! good client (retries an unavailable gateway with the same idempotency key); if it or the
//! auditor fails, the report says so and does not pass. With `races`, a share of the runs race
//! cancels against transitions into a wait and exhaust their retries, and every other worker
//! disruption is a stall past its liveness instead of a kill ([`races`]). Used by the `chaos`
//! test (small) and `baton-loadtest --mode chaos`.

pub mod races;
mod report;

use report::audit;
pub use report::{passed, ChaosReport};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baton_proto::v1::{AutonomyLevel, ListApprovalsRequest, RetryPolicy, RunSpec};

use crate::runs::script;
use crate::tool_server::{Behavior, ToolServer};
use crate::{Stack, StackOptions};

/// What to run and what to break.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Runs to submit.
    pub runs: usize,
    /// Submissions per second.
    pub submit_per_sec: u32,
    /// Worker processes.
    pub workers: usize,
    /// Time between worker kills.
    pub kill_every: Duration,
    /// Kill the scheduler and the reaper once each, midway.
    pub kill_control_plane: bool,
    /// Restart Redis (AOF, fsync always) and the broker midway.
    pub restart_infra: bool,
    /// Failure rate of the flaky step.
    pub flaky_rate: f64,
    /// Bound on waiting for every run to end after the chaos.
    pub settle: Duration,
    /// Long runs of many short steps instead of the mixed workload: kills land mid-slice, while
    /// a run keeps its worker across steps.
    pub long_runs: bool,
    /// Race workloads beside the mixed one (cancels racing a transition into a wait, runs that
    /// dead-letter) and stalls past the liveness TTL instead of every other kill.
    pub races: bool,
    /// Run on a Redis Cluster (3 primaries, a replica each) whose writes each wait for this
    /// many replicas (`redis.min_replicas_acked`); `None`: a single Redis.
    pub cluster_replicas_acked: Option<u32>,
    /// On a cluster: SIGKILL, midway, the primary holding the busiest index shard, and let the
    /// cluster fail it over to its replica.
    pub kill_redis_primary: bool,
}

/// Thirty short steps, two of them recorded effects: most of a run happens inside one slice.
fn long_workload() -> RunSpec {
    let mut steps = Vec::new();
    for i in 0..30 {
        steps.push(match i {
            7 | 21 => ("ledger", "{}"),
            _ if i % 5 == 0 => ("sleep", r#"{"ms":40}"#),
            _ => ("echo", "{}"),
        });
    }
    let mut spec = script(&steps);
    spec.retry = Some(RetryPolicy { max_attempts: 8, initial_backoff_ms: 200, max_backoff_ms: 1_000 });
    spec
}

/// Every second run calls the `upstream` HTTP tool; every third needs approval for its ledger
/// effects (autonomy `executes_after_approval`).
fn workload(i: usize, flaky_rate: f64) -> RunSpec {
    let sleep = format!(r#"{{"ms":{}}}"#, 100 + (i % 3) * 100);
    let flaky = format!(r#"{{"fail_rate":{flaky_rate}}}"#);
    let mut steps = vec![("echo", "{}"), ("ledger", "{}"), ("sleep", &sleep), ("flaky", &flaky), ("ledger", "{}")];
    if i.is_multiple_of(2) {
        steps.push(("upstream", "{}"));
    }
    steps.push(("echo", "{}"));
    let mut spec = script(&steps);
    spec.retry = Some(RetryPolicy { max_attempts: 8, initial_backoff_ms: 200, max_backoff_ms: 1_000 });
    if i.is_multiple_of(3) {
        spec.autonomy = AutonomyLevel::ExecutesAfterApproval as i32;
    }
    spec
}

/// Stack settings for chaos: short leases, fast tiers, AOF Redis when infra restarts, a Redis
/// Cluster when asked, the `upstream` tool in the manifest (`{dir}/tools.toml`) with a quick
/// breaker.
pub fn options(cfg: &ChaosConfig) -> StackOptions {
    let mut opts = StackOptions {
        redis_aof: cfg.restart_infra,
        redis_cluster: cfg.cluster_replicas_acked.is_some(),
        ..StackOptions::default()
    };
    if let Some(acked) = cfg.cluster_replicas_acked {
        opts.env.push(("BATON_REDIS_MIN_REPLICAS_ACKED".into(), acked.to_string()));
    }
    opts.env.push(("BATON_SCHEDULER_RETRY_TIERS_MS".into(), "[200, 1000]".into()));
    opts.config_toml = "[tools]\nmanifest = \"{dir}/tools.toml\"\n\n[breakers]\nfailures = 3\nwindow_ms = 10000\ncooldown_ms = 1000\n\n[approvals]\nttl_ms = 600000\n".into();
    opts
}

fn manifest(upstream: &ToolServer) -> String {
    format!(
        "[tools.upstream]\ndescription = \"A service that fails in bursts\"\nkind = \"http\"\nside_effect = \"read\"\n\
         idempotent = true\nurl = \"{}\"\ntimeout_ms = 2000\nargs_schema = {{ type = \"object\" }}\n",
        upstream.url("upstream")
    )
}

/// The upstream fails (503) for 1.5 s of every 6 s, until `stop`.
fn spawn_bursts(upstream: std::sync::Arc<ToolServer>, stop: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        loop {
            upstream.set("upstream", Behavior::Ok);
            tokio::select! { _ = tokio::time::sleep(Duration::from_millis(4_500)) => {}, _ = stop.cancelled() => break }
            upstream.set("upstream", Behavior::Always(503));
            tokio::select! { _ = tokio::time::sleep(Duration::from_millis(1_500)) => {}, _ = stop.cancelled() => break }
        }
        upstream.set("upstream", Behavior::Ok);
    });
}

/// Grants every pending approval like a person would, quoting the id and hash it was shown,
/// until `stop`; returns how many it granted.
fn spawn_approver(
    mut client: baton_proto::v1::run_service_client::RunServiceClient<tonic::transport::Channel>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut granted = 0;
        while !stop.is_cancelled() {
            if let Ok(page) = client.list_approvals(ListApprovalsRequest { limit: 100, ..Default::default() }).await {
                for p in page.into_inner().approvals {
                    let Some(a) = p.approval else { continue };
                    if client.resolve_approval(crate::runs::approve(&p.run_id, &a, "chaos-approver", "")).await.is_ok()
                    {
                        granted += 1;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        granted
    })
}

/// Runs the scenario on a fresh stack and audits the result.
pub async fn run(cfg: ChaosConfig) -> ChaosReport {
    let started = Instant::now();
    let upstream = std::sync::Arc::new(ToolServer::start(0).await.expect("upstream tool server"));
    let mut stack = Stack::infra("chaos", options(&cfg)).await;
    let mut failover_ms = None;
    stack.write_file("tools.toml", &manifest(&upstream));
    stack.start_gateway().await;
    for _ in 0..cfg.workers {
        stack.start("worker").await;
    }
    stack.start("scheduler").await;
    stack.start("reaper").await;
    let client = stack.client().await;
    let stop_gates = tokio_util::sync::CancellationToken::new();
    spawn_bursts(upstream.clone(), stop_gates.clone());
    let approver = spawn_approver(client.clone(), stop_gates.clone());

    // Submit at a steady rate while the driver breaks things.
    let submitter = {
        let mut client = client.clone();
        let (n, rate, flaky, long, racing) =
            (cfg.runs, cfg.submit_per_sec.max(1), cfg.flaky_rate, cfg.long_runs, cfg.races);
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(n);
            let mut failures = Vec::new();
            let mut cancels = Vec::new();
            for i in 0..n {
                let kind = if racing { races::kind_of(i) } else { races::RaceKind::Mixed };
                let spec = match kind {
                    races::RaceKind::Mixed if long => long_workload(),
                    races::RaceKind::Mixed => workload(i, flaky),
                    _ => races::workload(kind, i),
                };
                match submit_retrying(&mut client, spec, &format!("chaos-{i}")).await {
                    Ok(id) => {
                        if kind == races::RaceKind::Cancelled {
                            let delay = races::cancel_delay(i);
                            cancels.push(tokio::spawn(races::cancel_after(client.clone(), id.clone(), delay)));
                        }
                        ids.push(id);
                    }
                    Err(e) => failures.push(format!("submit chaos-{i}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(1_000 / u64::from(rate))).await;
            }
            let mut accepted = HashMap::new();
            for c in cancels {
                if let Ok((id, ok)) = c.await {
                    accepted.insert(id, ok);
                }
            }
            (ids, failures, accepted)
        })
    };
    let mut kills: Vec<Instant> = Vec::new();
    let mut stalls = 0usize;
    let mut round = 0usize;
    while !submitter.is_finished() {
        tokio::time::sleep(cfg.kill_every).await;
        round += 1;
        let workers: Vec<usize> = (0..stack.services.len())
            .filter(|i| stack.services[*i].name.starts_with("worker") && alive(&mut stack, *i))
            .collect();
        let victim = workers[round % workers.len()];
        if cfg.races && round % 2 == 1 {
            // A stall past the liveness TTL: the reaper breaks its leases, its runs move on,
            // and when it resumes every late commit of its must be refused.
            stack.services[victim].freeze();
            races::thaw_later(stack.services[victim].pid(), Duration::from_secs(5));
            kills.push(Instant::now());
            stalls += 1;
            continue;
        }
        stack.services[victim].kill().await;
        kills.push(Instant::now());
        stack.start("worker").await;
        if cfg.kill_control_plane && round == 2 {
            for service in ["scheduler", "reaper"] {
                let i = stack.find(service);
                stack.services[i].kill().await;
                kills.push(Instant::now());
                tokio::time::sleep(Duration::from_millis(500)).await;
                stack.start(service).await;
            }
        }
        if cfg.kill_redis_primary && round == 2 {
            if let Some(cluster) = stack.cluster.as_mut() {
                // The primary of index shard 0: every run's due-time entries of that shard, the
                // shard leases, and about a third of the runs' own keys go with it.
                let busy = baton_store::keys::inflight(0);
                if let Some(port) = cluster.primary_of(&busy).await {
                    // Its replica falls behind first (cut off for 1.5 s while the primary takes
                    // writes), as a lagging replica does: what it never received is what a
                    // failover can lose, unless every write waited for it.
                    let replica = cluster.replica_of(port).await;
                    if let Some(r) = replica {
                        cluster.freeze(r, true);
                        tokio::time::sleep(Duration::from_millis(1_500)).await;
                    }
                    cluster.kill(port).await;
                    if let Some(r) = replica {
                        cluster.freeze(r, false);
                    }
                    kills.push(Instant::now());
                    let took = cluster.wait_for_failover(port, Duration::from_secs(60)).await;
                    failover_ms = Some(took.as_millis() as u64);
                    // Restarted like a pod, it rejoins as the new primary's replica: writes that
                    // wait for a replica can be confirmed again.
                    cluster.restart(&stack.dir, port).await;
                }
            }
        }
        if cfg.restart_infra && round == 3 {
            // A host crash: what was not fsynced is gone (nothing, under `appendfsync always`).
            stack.redis.crash(&stack.dir, Duration::ZERO).await;
            kills.push(Instant::now());
        }
        if cfg.restart_infra && round == 4 {
            stack.broker.restart(&stack.dir).await;
            kills.push(Instant::now());
        }
    }
    let (ids, failures, cancels) = match submitter.await {
        Ok(done) => done,
        Err(e) => (Vec::new(), vec![format!("the submitter failed: {e}")], HashMap::new()),
    };
    let mut report = audit(&stack, client, ids, &cancels, &kills, started, cfg.settle).await;
    report.stalls = stalls;
    report.failover_ms = failover_ms;
    stop_gates.cancel();
    report.approvals = approver.await.unwrap_or(0);
    report.failures.extend(failures);
    if report.runs < cfg.runs {
        report.failures.push(format!("only {} of {} runs were admitted", report.runs, cfg.runs));
    }
    report
}

/// Submits like a good client: an unavailable gateway (Redis or the broker restarting) is
/// retried with the same idempotency key for up to a minute; other errors are final.
async fn submit_retrying(
    client: &mut baton_proto::v1::run_service_client::RunServiceClient<tonic::transport::Channel>,
    spec: RunSpec,
    key: &str,
) -> Result<String, tonic::Status> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let req = baton_proto::v1::SubmitRunRequest { spec: Some(spec.clone()), idempotency_key: key.to_string() };
        match client.submit_run(req).await {
            Ok(reply) => return Ok(reply.into_inner().run_id),
            Err(s) if s.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(s) => return Err(s),
        }
    }
}

fn alive(stack: &mut Stack, i: usize) -> bool {
    matches!(stack.services[i].child.try_wait(), Ok(None))
}
