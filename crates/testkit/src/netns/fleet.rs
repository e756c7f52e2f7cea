//! The fleet as separate hosts: Redis, the broker, the gateway, each worker, the scheduler and
//! the reaper each in a network namespace of its own ([`Hosts`]), talking over the bridge; the
//! HTTP tool server (and, for latency, a [`Relay`] in front of Redis) in the test's namespace.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use baton_proto::v1::run_service_client::RunServiceClient;
use tonic::transport::Channel;

use super::hosts::{Host, Hosts};
use super::relay::Relay;
use crate::tool_server::ToolServer;
use crate::{bin_path, find_executable, http_get_at, wait_for_addr, Proc, StackOptions, TempDir};

const START_WITHIN: Duration = Duration::from_secs(30);
const REDIS_PORT: u16 = 6379;
const BROKER_PORT: u16 = 9092;
const GRPC_PORT: u16 = 50051;
const OPS_PORT: u16 = 9100;

/// How a fleet is made.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// How many workers (each on a host of its own, named `worker-1`, …).
    pub workers: usize,
    /// Workers reach Redis through a [`Relay`] adding this latency each way (none if zero).
    pub worker_redis_delay: Duration,
    /// Extra `BATON_*` variables for every service.
    pub env: Vec<(String, String)>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self { workers: 3, worker_redis_delay: Duration::ZERO, env: Vec::new() }
    }
}

/// One Baton service on its host.
pub struct Member {
    /// Its host.
    pub host: Host,
    /// The process.
    pub proc: Proc,
}

impl Member {
    /// Its ops endpoint (`/readyz`, `/metrics`).
    pub fn ops(&self) -> SocketAddr {
        (self.host.ip, OPS_PORT).into()
    }

    /// Whether worker instance `id` (`<name>@<pid>-<n>`: in leases, owner records, events) is
    /// this member's.
    pub fn is_instance(&self, id: &str) -> bool {
        id.strip_prefix(self.host.name.as_str()).is_some_and(|rest| rest.starts_with('@'))
    }

    /// The body of its `GET /metrics`.
    pub async fn metrics(&self) -> String {
        http_get_at(self.ops(), "/metrics").await.map(|(_, body)| body).unwrap_or_default()
    }
}

/// The running fleet; every process, namespace and link goes when it is dropped.
pub struct Fleet {
    /// Logs and data.
    pub dir: TempDir,
    /// The HTTP tool server the runs' `effect` tool calls (`http`, side effect `write`).
    pub tools: ToolServer,
    /// Redis's host and process.
    pub redis: Member,
    /// The broker's host and process.
    pub broker: Member,
    /// The gateway.
    pub gateway: Member,
    /// The workers, `worker-1` first.
    pub workers: Vec<Member>,
    /// The scheduler.
    pub scheduler: Member,
    /// The reaper.
    pub reaper: Member,
    /// The relay between workers and Redis, when the options ask for latency.
    pub relay: Option<Relay>,
    // Dropped last: the namespaces outlive the processes in them.
    hosts: Hosts,
}

impl Fleet {
    /// Makes the hosts and starts everything on them; an error says what could not be made.
    pub async fn start(label: &str, opts: FleetOptions) -> Result<Self, String> {
        let mut hosts = Hosts::new()?;
        let dir = TempDir::new(label);
        let tools = ToolServer::start_at(hosts.local_ip().into(), 0).await.map_err(|e| format!("tool server: {e}"))?;
        std::fs::write(dir.path().join("tools.toml"), manifest(&tools)).map_err(|e| e.to_string())?;
        let config = format!("[tools]\nmanifest = \"{}/tools.toml\"\n", dir.path().display());
        std::fs::write(dir.path().join("baton.toml"), config).map_err(|e| e.to_string())?;

        let redis_host = hosts.add("redis")?;
        let redis_proc = start_redis(&dir, &redis_host).await?;
        let redis = Member { host: redis_host, proc: redis_proc };
        let broker_host = hosts.add("broker")?;
        let broker_proc = start_broker(&dir, &broker_host).await?;
        let broker = Member { host: broker_host, proc: broker_proc };
        let relay = match opts.worker_redis_delay.is_zero() {
            true => None,
            false => {
                let listen: SocketAddr = (hosts.local_ip(), 0).into();
                let target: SocketAddr = (redis.host.ip, REDIS_PORT).into();
                Some(Relay::start(listen, target, opts.worker_redis_delay).await.map_err(|e| format!("relay: {e}"))?)
            }
        };
        let base = Base {
            dir: &dir,
            redis: format!("redis://{}:{REDIS_PORT}", redis.host.ip),
            worker_redis: relay.as_ref().map(|r| format!("redis://{}", r.addr)),
            brokers: format!("{}:{BROKER_PORT}", broker.host.ip),
            extra: &opts.env,
        };
        let gateway = base.start(&mut hosts, "gateway", "gateway").await?;
        let mut workers = Vec::new();
        for i in 1..=opts.workers {
            workers.push(base.start(&mut hosts, "worker", &format!("worker-{i}")).await?);
        }
        let scheduler = base.start(&mut hosts, "scheduler", "scheduler").await?;
        let reaper = base.start(&mut hosts, "reaper", "reaper").await?;
        let fleet = Self { dir, tools, redis, broker, gateway, workers, scheduler, reaper, relay, hosts };
        fleet.settle().await?;
        Ok(fleet)
    }

    /// Waits (at most 60 s) until every worker owns a partition of lane `main`, as the workers
    /// publish it (`baton:owners:main`): a scenario starts from a settled group.
    async fn settle(&self) -> Result<(), String> {
        let mut conn = self.redis_conn().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let owners: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                .arg(baton_store::keys::owners("main"))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            let owns = |w: &Member| owners.values().any(|v| w.is_instance(v));
            if self.workers.iter().all(owns) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("the workers did not all get partitions: {owners:?}\n{}", self.logs()));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The hosts, to cut and heal links.
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    /// A gRPC client of the gateway, from the test's namespace.
    pub async fn client(&self) -> Result<RunServiceClient<Channel>, String> {
        let endpoint = format!("http://{}:{GRPC_PORT}", self.gateway.host.ip);
        RunServiceClient::connect(endpoint).await.map_err(|e| format!("connect to the gateway: {e}"))
    }

    /// A Redis connection from the test's namespace (never through the relay).
    pub async fn redis_conn(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let client =
            redis::Client::open(format!("redis://{}:{REDIS_PORT}", self.redis.host.ip)).map_err(|e| e.to_string())?;
        client.get_multiplexed_async_connection().await.map_err(|e| format!("connect to redis: {e}"))
    }

    /// Redis's address.
    pub fn redis_ip(&self) -> Ipv4Addr {
        self.redis.host.ip
    }

    /// The broker's address.
    pub fn broker_ip(&self) -> Ipv4Addr {
        self.broker.host.ip
    }

    /// The worker whose host has `ip`.
    pub fn worker_at(&self, ip: Ipv4Addr) -> Option<usize> {
        self.workers.iter().position(|w| w.host.ip == ip)
    }

    /// For each run, the worker that holds its lease now, if any (one Redis round trip).
    pub async fn lease_holders(&self, run_ids: &[String]) -> Vec<Option<usize>> {
        let Ok(mut conn) = self.redis_conn().await else { return vec![None; run_ids.len()] };
        let keys: Vec<String> = run_ids.iter().map(|r| baton_store::keys::lease(r)).collect();
        let leases: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await.unwrap_or_else(|_| vec![None; keys.len()]);
        let holder = |owner: &str| self.workers.iter().position(|w| w.is_instance(owner));
        leases.iter().map(|lease| lease.as_deref().and_then(holder)).collect()
    }

    /// Every service's log, for failure messages.
    pub fn logs(&self) -> String {
        let all = [&self.gateway, &self.scheduler, &self.reaper].into_iter().chain(&self.workers);
        all.map(|m| format!("==== {} ====\n{}", m.host.name, m.proc.log_text())).collect()
    }
}

/// The tool manifest: `effect`, a write whose key the tool server records.
fn manifest(tools: &ToolServer) -> String {
    format!(
        r#"
[tools.effect]
description = "A write to an external system; the same idempotency key writes once"
kind = "http"
side_effect = "write"
idempotent = true
timeout_ms = 20000
url = "{}"
args_schema = {{ type = "object" }}
"#,
        tools.url("effect")
    )
}

/// What every service is started with.
struct Base<'a> {
    dir: &'a TempDir,
    redis: String,
    worker_redis: Option<String>,
    brokers: String,
    extra: &'a [(String, String)],
}

impl Base<'_> {
    /// Adds host `name` and starts `baton-<service>` on it; waits for `/readyz`.
    async fn start(&self, hosts: &mut Hosts, service: &str, name: &str) -> Result<Member, String> {
        let host = hosts.add(name)?;
        let redis = match (service, &self.worker_redis) {
            ("worker", Some(relay)) => relay.clone(),
            _ => self.redis.clone(),
        };
        let mut env: Vec<(String, String)> = StackOptions::default().env;
        env.extend([
            ("BATON_KAFKA_BROKERS".to_string(), self.brokers.clone()),
            ("BATON_REDIS_URL".to_string(), redis),
            (format!("BATON_{}_OPS_LISTEN", service.to_uppercase()), format!("{}:{OPS_PORT}", host.ip)),
            ("BATON_CONFIG".to_string(), self.dir.path().join("baton.toml").display().to_string()),
        ]);
        if service == "gateway" {
            env.push(("BATON_GATEWAY_LISTEN".to_string(), format!("{}:{GRPC_PORT}", host.ip)));
        }
        if service == "worker" {
            env.push(("BATON_WORKER_NAME".to_string(), name.to_string()));
        }
        env.extend(self.extra.iter().cloned());
        let proc = spawn_in(&host, name, &bin_path(&format!("baton-{service}")), &[], &env, self.dir)?;
        let member = Member { host, proc };
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        while http_get_at(member.ops(), "/readyz").await.is_none_or(|(status, _)| status != 200) {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("{name} not ready in time:\n{}", member.proc.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(member)
    }
}

/// Starts `program` inside `host`'s namespace (`ip netns exec` execs it: the pid is the
/// program's, so kill and freeze reach it).
fn spawn_in(
    host: &Host,
    name: &str,
    program: &std::path::Path,
    args: &[String],
    env: &[(String, String)],
    dir: &TempDir,
) -> Result<Proc, String> {
    let ip = find_executable("ip").ok_or("`ip` not found: run scripts/install-deps.sh")?;
    let mut all = vec!["netns".to_string(), "exec".to_string(), host.ns.clone(), program.display().to_string()];
    all.extend_from_slice(args);
    Ok(Proc::spawn(name, &ip, &all, env, dir.path()))
}

async fn start_redis(dir: &TempDir, host: &Host) -> Result<Proc, String> {
    let exe = find_executable("redis-server").ok_or("redis-server not found: run scripts/install-deps.sh")?;
    let args: Vec<String> = [
        "--port",
        &REDIS_PORT.to_string(),
        "--bind",
        &host.ip.to_string(),
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.path().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let proc = spawn_in(host, "redis", &exe, &args, &[], dir)?;
    match wait_for_addr((host.ip, REDIS_PORT).into(), START_WITHIN).await {
        true => Ok(proc),
        false => Err(format!("redis-server did not start:\n{}", proc.log_text())),
    }
}

async fn start_broker(dir: &TempDir, host: &Host) -> Result<Proc, String> {
    let exe = find_executable("tansu").ok_or("tansu not found: run scripts/install-deps.sh")?;
    let url = format!("tcp://{}:{BROKER_PORT}", host.ip);
    let args: Vec<String> =
        ["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let proc = spawn_in(host, "broker", &exe, &args, &[], dir)?;
    match wait_for_addr((host.ip, BROKER_PORT).into(), START_WITHIN).await {
        true => Ok(proc),
        false => Err(format!("tansu did not start:\n{}", proc.log_text())),
    }
}
