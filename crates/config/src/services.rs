//! Each service's own section: `[gateway]`, `[worker]`, `[reaper]`, `[scheduler]`.

use serde::{Deserialize, Serialize};

/// `[gateway]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Gateway {
    /// gRPC listen address.
    pub listen: String,
    /// HTTP address for /healthz, /readyz, /metrics.
    pub ops_listen: String,
    /// Largest accepted gRPC request, bytes.
    pub max_request_bytes: usize,
    /// Most concurrent WatchRun streams.
    pub max_watchers: usize,
    /// Largest ListRuns / ListSteps page.
    pub max_page_size: u32,
    /// Latest steps GetRun includes when the request does not say.
    pub run_latest_steps: u32,
    /// Bounded drain on SIGTERM.
    pub drain_grace_ms: u64,
    /// Longest SubmitRun waits for the broker to take a new run's first task. The run is
    /// durable in Redis before that; if the broker is slow or down the submit answers anyway and
    /// the reaper dispatches the run once its dispatch grace passes.
    pub submit_dispatch_wait_ms: u64,
    /// PEM certificate chain of the gRPC listener; with `tls_key`, the listener speaks TLS only.
    /// Empty: plaintext.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".into(),
            ops_listen: "127.0.0.1:9460".into(),
            max_request_bytes: 1024 * 1024,
            max_watchers: 1024,
            max_page_size: 500,
            run_latest_steps: 100,
            drain_grace_ms: 10_000,
            submit_dispatch_wait_ms: 1_000,
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

/// `[worker]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Worker {
    /// Lane this worker executes.
    pub lane: String,
    /// A stable name that survives restarts (e.g. the pod name, `BATON_WORKER_NAME`); empty:
    /// none. A worker started under a name treats every earlier instance of that name as dead:
    /// it takes its partitions and has its leases broken at once, so its runs resume in seconds
    /// instead of after the liveness TTL. Names must be unique in the fleet (two live workers
    /// sharing one would keep declaring each other dead).
    pub name: String,
    /// HTTP address for /healthz, /readyz, /metrics.
    pub ops_listen: String,
    /// Steps executed at once by one worker process.
    pub concurrency: usize,
    /// Lease TTL: how long a silent worker keeps a run.
    pub lease_ttl_ms: u64,
    /// How often a running step renews its lease.
    pub heartbeat_ms: u64,
    /// A worker that has not beaten for this long is dead: the reaper breaks its leases and its
    /// runs resume at once, without waiting for the lease TTL (it beats every third of this).
    /// Also the lease on each partition a worker consumes: a dead worker's partitions move to
    /// the others within this.
    pub liveness_ttl_ms: u64,
    /// Longest one tool call may take.
    pub step_timeout_ms: u64,
    /// Largest tool output kept in the checkpoint, bytes.
    pub max_output_bytes: usize,
    /// Most steps a run executes per claim before it goes back through its lane topic, so one
    /// long run cannot starve the runs queued behind it.
    pub slice_max_steps: u32,
    /// Longest a run keeps its worker per claim, in milliseconds (checked between steps).
    pub slice_max_ms: u64,
    /// Bounded drain on SIGTERM.
    pub drain_grace_ms: u64,
}

impl Default for Worker {
    fn default() -> Self {
        Self {
            lane: "main".into(),
            name: String::new(),
            ops_listen: "127.0.0.1:9461".into(),
            concurrency: 64,
            lease_ttl_ms: 30_000,
            heartbeat_ms: 10_000,
            liveness_ttl_ms: 3_000,
            step_timeout_ms: 5 * 60 * 1000,
            max_output_bytes: 64 * 1024,
            slice_max_steps: 1000,
            slice_max_ms: 2_000,
            drain_grace_ms: 30_000,
        }
    }
}

/// `[reaper]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Reaper {
    /// HTTP address for /healthz, /readyz, /metrics.
    pub ops_listen: String,
    /// Longest sleep between sweeps when nothing is due sooner.
    pub max_interval_ms: u64,
    /// Most index entries handled per sweep.
    pub batch: usize,
    /// Bounded drain on SIGTERM.
    pub drain_grace_ms: u64,
    /// How often the lanes' consumer lag is read from the broker (0: never).
    pub lag_sample_ms: u64,
}

impl Default for Reaper {
    fn default() -> Self {
        Self {
            ops_listen: "127.0.0.1:9463".into(),
            max_interval_ms: 1_000,
            batch: 500,
            drain_grace_ms: 5_000,
            lag_sample_ms: 5_000,
        }
    }
}

/// `[scheduler]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Scheduler {
    /// HTTP address for /healthz, /readyz, /metrics.
    pub ops_listen: String,
    /// Delays of the retry tier topics, ascending (`<prefix>.tasks.retry.1s`, ...).
    pub retry_tiers_ms: Vec<u64>,
    /// Longest sleep of the timer sweeper when nothing is due sooner.
    pub timer_max_interval_ms: u64,
    /// Most timers woken per sweep.
    pub timer_batch: usize,
    /// Bounded drain on SIGTERM.
    pub drain_grace_ms: u64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self {
            ops_listen: "127.0.0.1:9462".into(),
            retry_tiers_ms: vec![1_000, 10_000, 60_000, 600_000],
            timer_max_interval_ms: 1_000,
            timer_batch: 500,
            drain_grace_ms: 5_000,
        }
    }
}
