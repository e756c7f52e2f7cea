//! The fleet's connections and logs: `[kafka]`, `[redis]`, `[telemetry]`.

use serde::{Deserialize, Serialize};

/// `[kafka]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Kafka {
    /// Bootstrap servers, comma-separated (`BATON_KAFKA_BROKERS`).
    pub brokers: String,
    /// Prefix of every topic name: `<prefix>.tasks.<lane>`, `<prefix>.events`.
    pub topic_prefix: String,
    /// Partitions of topics Baton creates (the most workers of a lane that can share work).
    pub partitions: i32,
    /// Replication factor of topics Baton creates.
    pub replication_factor: i32,
    /// Consumer-group partition assignment of the schedulers' retry tiers: `range`, `roundrobin`
    /// or `cooperative-sticky` (workers share their lane's partitions under Redis leases).
    pub assignment_strategy: String,
    /// Consumer session timeout of the schedulers' group: how long a dead scheduler keeps its
    /// retry-tier partitions. Consumers heartbeat every tenth of it, at most every second:
    /// members learn of a rebalance within that.
    pub session_timeout_ms: u32,
    /// Consumer `max.poll.interval.ms`, also the rebalance timeout: how long a rebalance waits
    /// for members to rejoin.
    pub max_poll_interval_ms: u32,
    /// Producer idempotence (`enable.idempotence`).
    pub idempotence: bool,
    /// Producer linger: how long to wait to batch records.
    pub linger_ms: u32,
    /// Consumer `fetch.wait.max.ms`: the longest a fetch waits for data; with brokers that
    /// answer a fetch only when it expires, this is added to every hand-on.
    pub fetch_wait_max_ms: u32,
    /// A consumer that received nothing for this long pauses its partitions (no fetches) until
    /// a wake-up: what an idle fleet costs the broker.
    pub idle_pause_ms: u64,
    /// `retention.ms` of the task and retry-tier topics Baton creates: a task is a hint (the
    /// in-flight index re-dispatches one that is gone), so this only bounds the broker's disk.
    pub task_retention_ms: u64,
    /// `retention.ms` of the events topic Baton creates: how long a consumer of `baton.events`
    /// may fall behind (each run's own events stay in Redis for the run's retention).
    pub events_retention_ms: u64,
    /// `retention.ms` of the dead-letter topic Baton creates.
    pub dlq_retention_ms: u64,
}

impl Default for Kafka {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "baton".into(),
            partitions: 8,
            replication_factor: 1,
            assignment_strategy: "range".into(),
            session_timeout_ms: 10_000,
            max_poll_interval_ms: 300_000,
            idempotence: true,
            linger_ms: 2,
            fetch_wait_max_ms: 10,
            idle_pause_ms: 2_000,
            task_retention_ms: 24 * 3_600_000,
            events_retention_ms: 7 * 24 * 3_600_000,
            dlq_retention_ms: 30 * 24 * 3_600_000,
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Redis {
    /// Connection URL (with `cluster`, one seed node of the cluster).
    pub url: String,
    /// Connections per service process (a single Redis; a cluster uses one multiplexed
    /// connection per node).
    pub pool_size: usize,
    /// Redis Cluster: `url` and `cluster_seeds` are nodes of a cluster, and every key is routed
    /// to the node owning its slot.
    pub cluster: bool,
    /// More seed nodes of the cluster besides `url` (any one reachable is enough to start).
    pub cluster_seeds: Vec<String>,
    /// Replicas that must have a write before it counts as done (Redis `WAIT`): every claim's
    /// fence, every commit and every change from outside a run. 0 trusts the primary alone (a
    /// failover can then lose acknowledged writes, docs/failure-model.md).
    pub min_replicas_acked: u32,
    /// How long a write waits for `min_replicas_acked` replicas before it counts as failed.
    pub replica_ack_timeout_ms: u64,
}

impl Default for Redis {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            pool_size: 32,
            cluster: false,
            cluster_seeds: Vec::new(),
            min_replicas_acked: 0,
            replica_ack_timeout_ms: 1_000,
        }
    }
}

/// `[telemetry]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Telemetry {
    /// Log filter, `RUST_LOG` syntax.
    pub log_level: String,
    /// `json` (default) or `text`.
    pub log_format: String,
    /// Argument fields (any depth, any case) masked as `[redacted]` in the run's events, on
    /// Redis and Kafka alike. The values of the secrets Baton reads (model API keys, tools'
    /// secret headers) are masked wherever they appear, whatever this list says.
    pub redact_fields: Vec<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        let redact_fields = [
            "password",
            "passwd",
            "secret",
            "token",
            "api_key",
            "apikey",
            "authorization",
            "access_token",
            "refresh_token",
            "client_secret",
            "private_key",
        ];
        Self {
            log_level: "info".into(),
            log_format: "json".into(),
            redact_fields: redact_fields.iter().map(|f| f.to_string()).collect(),
        }
    }
}
