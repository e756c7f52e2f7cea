//! The stack a test runs against: [`Redis`], [`Broker`], and the four services ([`Stack`]).

use std::time::Duration;

use baton_proto::v1::admin_service_client::AdminServiceClient;
use baton_proto::v1::run_service_client::RunServiceClient;
use tonic::transport::Channel;

use crate::process::{find_executable, http_get};
use crate::{bin_path, free_port, wait_for_port, Proc, TempDir};

const START_WITHIN: Duration = Duration::from_secs(30);

/// A private `redis-server` on a free loopback port.
pub struct Redis {
    /// Its port.
    pub port: u16,
    /// The process.
    pub proc: Proc,
    aof: bool,
    /// With AOF: the append-only file's recent lengths, for [`Redis::crash`].
    samples: Option<(crate::aof::AofSamples, tokio_util::sync::CancellationToken)>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some((_, stop)) = &self.samples {
            stop.cancel();
        }
    }
}

impl Redis {
    /// Starts redis-server in `dir`; with `aof`, every write is fsynced and survives a SIGKILL.
    pub async fn start(dir: &TempDir, aof: bool) -> Self {
        Self::start_on(dir, free_port(), aof).await
    }

    async fn start_on(dir: &TempDir, port: u16, aof: bool) -> Self {
        let exe = find_executable("redis-server").expect("redis-server not found: run scripts/install-deps.sh");
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            if aof { "yes" } else { "no" },
            "--appendfsync",
            "always",
            "--dir",
            &dir.path().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let proc = Proc::spawn(&format!("redis-{port}"), &exe, &args, &[], dir.path());
        assert!(wait_for_port(port, START_WITHIN).await, "redis-server did not start:\n{}", proc.log_text());
        let samples = aof.then(|| {
            let stop = tokio_util::sync::CancellationToken::new();
            (crate::aof::AofSamples::start(dir.path(), stop.clone()), stop)
        });
        Self { port, proc, aof, samples }
    }

    /// Kills it with SIGKILL and starts it again on the same port and directory.
    pub async fn restart(&mut self, dir: &TempDir) {
        self.proc.kill().await;
        let fresh = Self::start_on(dir, self.port, self.aof).await;
        *self = fresh;
    }

    /// A crash of the Redis *host*, not just of the process: Redis is frozen, killed, and its
    /// append-only file is cut back to what had been fsynced — its length `unsynced` ago, as
    /// `appendfsync everysec` may lose; zero under `always` (this stack's setting), where every
    /// write is fsynced before Redis answers it — then it starts again. Returns the bytes cut.
    pub async fn crash(&mut self, dir: &TempDir, unsynced: Duration) -> u64 {
        self.proc.freeze();
        let cut = self.samples.as_ref().map_or(0, |(s, _)| s.cut_back(dir.path(), unsynced));
        self.proc.kill().await;
        let fresh = Self::start_on(dir, self.port, self.aof).await;
        *self = fresh;
        cut
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A private tansu broker with sqlite storage on a free loopback port.
pub struct Broker {
    /// Its port.
    pub port: u16,
    /// The process.
    pub proc: Proc,
}

impl Broker {
    /// Starts tansu in `dir`.
    pub async fn start(dir: &TempDir) -> Self {
        Self::start_on(dir, free_port()).await
    }

    async fn start_on(dir: &TempDir, port: u16) -> Self {
        let exe = find_executable("tansu").expect("tansu not found: run scripts/install-deps.sh");
        let url = format!("tcp://127.0.0.1:{port}");
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "sqlite://tansu.db",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // BATON_TEST_BROKER_LOG=<filter> passes a RUST_LOG filter to tansu, for debugging.
        let env: Vec<(String, String)> =
            std::env::var("BATON_TEST_BROKER_LOG").map(|f| vec![("RUST_LOG".to_string(), f)]).unwrap_or_default();
        let proc = Proc::spawn(&format!("tansu-{port}"), &exe, &args, &env, dir.path());
        assert!(wait_for_port(port, START_WITHIN).await, "tansu did not start:\n{}", proc.log_text());
        Self { port, proc }
    }

    /// Kills it with SIGKILL and starts it again on the same port and storage.
    pub async fn restart(&mut self, dir: &TempDir) {
        self.proc.kill().await;
        *self = Self::start_on(dir, self.port).await;
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Settings of a test stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Extra `BATON_*` variables for every service, e.g. short leases.
    pub env: Vec<(String, String)>,
    /// Redis with AOF persistence (for restart tests).
    pub redis_aof: bool,
    /// A TOML config file every service reads (`BATON_CONFIG`): model endpoints, agents,
    /// policy rules; `{dir}` stands for the stack's directory. Empty for none.
    pub config_toml: String,
    /// Run the services on a Redis Cluster of 3 primaries with a replica each instead of a
    /// single Redis ([`Stack::cluster`]).
    pub redis_cluster: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        let env = [
            ("BATON_WORKER_LEASE_TTL_MS", "3000"),
            ("BATON_WORKER_HEARTBEAT_MS", "1000"),
            ("BATON_KAFKA_SESSION_TIMEOUT_MS", "6000"),
            ("BATON_KAFKA_MAX_POLL_INTERVAL_MS", "8000"),
            ("BATON_KAFKA_PARTITIONS", "4"),
            ("BATON_RUNS_DISPATCH_GRACE_MS", "5000"),
            ("BATON_REAPER_MAX_INTERVAL_MS", "250"),
            ("BATON_WORKER_DRAIN_GRACE_MS", "5000"),
            ("BATON_TELEMETRY_LOG_LEVEL", "info,librdkafka=warn,rdkafka=warn"),
        ];
        Self {
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            redis_aof: false,
            config_toml: String::new(),
            redis_cluster: false,
        }
    }
}

/// Redis, a broker, and any number of Baton services, all in one temp dir.
pub struct Stack {
    /// Where logs and data live.
    pub dir: TempDir,
    /// The Redis server (with [`StackOptions::redis_cluster`], started but not used by the
    /// services: they use [`Stack::cluster`]).
    pub redis: Redis,
    /// The Redis Cluster, with [`StackOptions::redis_cluster`].
    pub cluster: Option<crate::cluster::RedisCluster>,
    /// The broker.
    pub broker: Broker,
    /// The gateway's gRPC port (0 until [`Stack::start_gateway`]).
    pub grpc_port: u16,
    /// Running services, in start order.
    pub services: Vec<Proc>,
    opts: StackOptions,
}

impl Stack {
    /// Starts Redis and the broker (no services yet).
    pub async fn infra(label: &str, opts: StackOptions) -> Self {
        let dir = TempDir::new(label);
        let redis = Redis::start(&dir, opts.redis_aof).await;
        let cluster = match opts.redis_cluster {
            true => Some(crate::cluster::RedisCluster::start(&dir, 3, 1).await),
            false => None,
        };
        let broker = Broker::start(&dir).await;
        Self { dir, redis, cluster, broker, grpc_port: 0, services: Vec::new(), opts }
    }

    /// Starts Redis, the broker, gateway, one worker, scheduler and reaper.
    pub async fn full(label: &str, opts: StackOptions) -> Self {
        let mut stack = Self::infra(label, opts).await;
        stack.start_gateway().await;
        stack.start("worker").await;
        stack.start("scheduler").await;
        stack.start("reaper").await;
        stack
    }

    /// The environment every service gets: broker, Redis, ports, and the options' extras.
    pub fn env(&self, service: &str, ops_port: u16) -> Vec<(String, String)> {
        let mut env = vec![
            ("BATON_KAFKA_BROKERS".to_string(), self.broker.bootstrap()),
            (format!("BATON_{}_OPS_LISTEN", service.to_uppercase()), format!("127.0.0.1:{ops_port}")),
        ];
        env.extend(self.redis_env());
        if service == "gateway" {
            env.push(("BATON_GATEWAY_LISTEN".to_string(), format!("127.0.0.1:{}", self.grpc_port)));
        }
        if !self.opts.config_toml.is_empty() {
            let text = self.opts.config_toml.replace("{dir}", &self.dir.path().display().to_string());
            let path = self.write_file("baton.toml", &text);
            env.push(("BATON_CONFIG".to_string(), path.display().to_string()));
        }
        env.extend(self.opts.env.iter().cloned());
        env
    }

    /// Writes `text` to `name` in the stack's directory (a config file, a tool manifest) and
    /// returns its path. Written to a temp file and renamed, so a watcher never sees half of it.
    pub fn write_file(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write file");
        std::fs::rename(&tmp, &path).expect("rename file");
        path
    }

    /// Starts the gateway and waits until it is ready.
    pub async fn start_gateway(&mut self) {
        self.grpc_port = free_port();
        self.start("gateway").await;
    }

    /// Starts `baton-<service>` and waits until its `/readyz` answers 200. Returns its index.
    pub async fn start(&mut self, service: &str) -> usize {
        self.start_with(service, &[]).await
    }

    /// Starts `baton-<service>` and waits for it to exit on its own, at most 30 s: for services
    /// that must refuse to start. Returns the exit code and the log.
    pub async fn start_expecting_exit(&mut self, service: &str, extra: &[(&str, &str)]) -> (Option<i32>, String) {
        let mut env = self.env(service, free_port());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let name = format!("{service}-{}", self.services.len());
        let mut proc = Proc::spawn(&name, &bin_path(&format!("baton-{service}")), &[], &env, self.dir.path());
        let status = tokio::time::timeout(START_WITHIN, proc.child.wait()).await;
        let code = status.ok().and_then(Result::ok).and_then(|s| s.code());
        (code, proc.log_text())
    }

    /// Like [`Stack::start`], with extra environment variables.
    pub async fn start_with(&mut self, service: &str, extra: &[(&str, &str)]) -> usize {
        self.start_until(service, extra, "/readyz").await
    }

    /// Like [`Stack::start_with`], but waits only until the service is alive (`/healthz`), not
    /// ready: for a process whose readiness probe is expected to lag (a skewed clock).
    pub async fn start_alive(&mut self, service: &str, extra: &[(&str, &str)]) -> usize {
        self.start_until(service, extra, "/healthz").await
    }

    async fn start_until(&mut self, service: &str, extra: &[(&str, &str)], probe: &str) -> usize {
        let ops_port = free_port();
        let mut env = self.env(service, ops_port);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let name = format!("{service}-{}", self.services.len());
        let mut proc = Proc::spawn(&name, &bin_path(&format!("baton-{service}")), &[], &env, self.dir.path());
        proc.ops_port = Some(ops_port);
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        loop {
            if http_get(ops_port, probe).await.is_some_and(|(status, _)| status == 200) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name} not ready in time:\n{}", proc.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.services.push(proc);
        self.services.len() - 1
    }

    /// A store on the stack's Redis (or cluster), connected as the services are.
    pub fn store(&self) -> baton_store::Store {
        let config = match &self.cluster {
            Some(cluster) => {
                let urls = cluster.urls();
                baton_config::Redis {
                    url: urls[0].clone(),
                    cluster: true,
                    cluster_seeds: urls[1..].to_vec(),
                    ..Default::default()
                }
            }
            None => baton_config::Redis { url: self.redis.url(), pool_size: 4, ..Default::default() },
        };
        baton_store::Store::new(&config).expect("a store for the stack's Redis")
    }

    /// How the services find Redis: `BATON_REDIS_URL`, and for a cluster its other seeds.
    pub fn redis_env(&self) -> Vec<(String, String)> {
        match &self.cluster {
            Some(cluster) => {
                let urls = cluster.urls();
                let seeds = urls[1..].iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ");
                vec![
                    ("BATON_REDIS_URL".into(), urls[0].clone()),
                    ("BATON_REDIS_CLUSTER".into(), "true".into()),
                    ("BATON_REDIS_CLUSTER_SEEDS".into(), format!("[{seeds}]")),
                ]
            }
            None => vec![("BATON_REDIS_URL".into(), self.redis.url())],
        }
    }

    /// A gRPC client of the gateway.
    pub async fn client(&self) -> RunServiceClient<Channel> {
        let endpoint = format!("http://127.0.0.1:{}", self.grpc_port);
        RunServiceClient::connect(endpoint).await.expect("connect to gateway")
    }

    /// A gRPC client of the gateway's AdminService.
    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        let endpoint = format!("http://127.0.0.1:{}", self.grpc_port);
        AdminServiceClient::connect(endpoint).await.expect("connect to gateway")
    }

    /// Index of the most recently started instance of `service`.
    pub fn find(&self, service: &str) -> usize {
        self.services.iter().rposition(|p| p.name.starts_with(service)).expect("service not started")
    }

    /// The instance id a service logged at start (`"worker":"worker-<pid>-<n>"`), if any.
    pub fn instance_id(&self, index: usize) -> Option<String> {
        let log = self.services[index].log_text();
        let pid = self.services[index].pid();
        // `worker-<pid>-<random>`, or `<name>@<pid>-<random>` for a named worker.
        let (plain, named) = (format!("\"worker-{pid}-"), format!("@{pid}-"));
        log.lines().find_map(|l| {
            let start = match l.find(&plain) {
                Some(at) => at + 1,
                None => l[..l.find(&named)?].rfind('"')? + 1,
            };
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_string())
        })
    }

    /// Waits (at most 90 s) until each worker of `workers` owns a partition of `lane`, as the
    /// workers publish it (`baton:owners:<lane>`): a group change a test makes next then starts
    /// from a settled group. Reads the single Redis (not a [`StackOptions::redis_cluster`]).
    pub async fn wait_for_partitions(&self, lane: &str, workers: &[usize]) {
        assert!(self.cluster.is_none(), "wait_for_partitions reads the single Redis, not a cluster");
        let client = redis::Client::open(self.redis.url()).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect to redis");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let owners: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                .arg(baton_store::keys::owners(lane))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            let owns = |i: &usize| {
                self.instance_id(*i).is_some_and(|w| owners.values().any(|v| v.starts_with(&format!("{w}|"))))
            };
            if workers.iter().all(owns) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "workers {workers:?} did not all get partitions of {lane}: {owners:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The body of `GET /metrics` of service `index`.
    pub async fn metrics(&self, index: usize) -> String {
        let port = self.services[index].ops_port.expect("a Baton service");
        http_get(port, "/metrics").await.map(|(_, body)| body).unwrap_or_default()
    }

    /// All service logs, for failure messages.
    pub fn logs(&self) -> String {
        self.services.iter().map(|p| format!("==== {} ====\n{}", p.name, p.log_text())).collect()
    }
}
