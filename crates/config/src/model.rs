//! The config tree: one section per concern, every field with a default that runs on a laptop.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole fleet's config. Each service reads the sections it needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Kafka-protocol broker and topics.
    pub kafka: Kafka,
    /// Redis connection.
    pub redis: Redis,
    /// Admission: limits, defaults and ceilings for run specs.
    pub runs: Runs,
    /// The gRPC gateway.
    pub gateway: Gateway,
    /// Step executors.
    pub worker: Worker,
    /// Recovery of abandoned work.
    pub reaper: Reaper,
    /// Delayed retries and timers.
    pub scheduler: Scheduler,
    /// Logs and traces.
    pub telemetry: Telemetry,
    /// Model endpoints a `model` planner may name: `[models.<name>]`.
    pub models: BTreeMap<String, Model>,
    /// Agents a `grpc` planner may name: `[agents.<name>]`.
    pub agents: BTreeMap<String, Agent>,
    /// Lanes' version sets and routing weights: `[lanes.<name>]` (names from `runs.lanes`).
    pub lanes: BTreeMap<String, Lane>,
    /// The tool manifest.
    pub tools: Tools,
    /// Tenant policy rules applied to every proposal.
    pub policy: Policy,
    /// Approval requests: expiry and what denial does.
    pub approvals: Approvals,
    /// Per-tool circuit breakers shared by the fleet.
    pub breakers: Breakers,
    /// Operator switches (tools, lanes, tenant caps).
    pub switches: Switches,
    /// Who may call the gateway: API keys, JWTs, roles (docs/security.md).
    pub auth: Auth,
}

impl Config {
    /// The admission policy: `[runs]` limits, and the configured model endpoints and agents.
    pub fn admission_policy(&self) -> baton_core::admission::Policy {
        baton_core::admission::Policy {
            models: self.models.keys().cloned().collect(),
            agents: self.agents.keys().cloned().collect(),
            ..self.runs.limits()
        }
    }
}

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
    /// Consumer-group partition assignment: `range`, `roundrobin` or `cooperative-sticky`.
    pub assignment_strategy: String,
    /// Consumer session timeout: how long a dead worker keeps its partitions.
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
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Redis {
    /// Connection URL.
    pub url: String,
    /// Connections per service process.
    pub pool_size: usize,
}

impl Default for Redis {
    fn default() -> Self {
        Self { url: "redis://127.0.0.1:6379".into(), pool_size: 32 }
    }
}

/// `[runs]`: what a submitted spec may ask for, and what it gets when it asks for nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Runs {
    /// Lanes that have workers.
    pub lanes: Vec<String>,
    /// Most steps a script plan may list.
    pub max_plan_steps: u32,
    /// Largest args of one tool call, bytes.
    pub max_args_bytes: usize,
    /// Largest goal text, bytes.
    pub max_goal_bytes: usize,
    /// Step budget when the spec sets none.
    pub default_max_steps: u32,
    /// Highest step budget a spec may set.
    pub ceiling_max_steps: u32,
    /// Wall-clock budget when the spec sets none.
    pub default_wall_clock_ms: u64,
    /// Highest wall-clock budget a spec may set.
    pub ceiling_wall_clock_ms: u64,
    /// Attempts per step when the spec sets none.
    pub default_max_attempts: u32,
    /// Highest attempts per step a spec may set.
    pub ceiling_max_attempts: u32,
    /// First retry back-off when the spec sets none.
    pub default_initial_backoff_ms: u64,
    /// Back-off cap when the spec sets none.
    pub default_max_backoff_ms: u64,
    /// How long a finished run's checkpoint and history are kept.
    pub retention_secs: u64,
    /// How long a submit idempotency key maps to its run.
    pub idempotency_ttl_secs: u64,
    /// How long a produced task may wait before the reaper checks that it was picked up.
    pub dispatch_grace_ms: u64,
    /// Token budget (input + output) when the spec sets none.
    pub default_max_tokens: u64,
    /// Highest token budget a spec may set.
    pub ceiling_max_tokens: u64,
    /// Cost budget (millionths of the price unit) when the spec sets none.
    pub default_max_cost_micros: u64,
    /// Highest cost budget a spec may set.
    pub ceiling_max_cost_micros: u64,
    /// Tool-call budget when the spec sets none (a script gets at least its length).
    pub default_max_tool_calls: u32,
    /// Rejected proposals fed back to a planner before the run is refused, when the spec sets none.
    pub default_max_rejections: u32,
    /// Runs not yet ended a tenant may have (0: no cap); an operator switch overrides it per tenant.
    pub max_active_per_tenant: u32,
    /// Runs a tenant may submit per second, on average (0: no limit); a token bucket in Redis
    /// shared by every gateway. `tenant.submit_rate` overrides it per tenant.
    pub submit_rate_per_tenant: u32,
    /// Submits a tenant may make at once after a quiet spell (the bucket's size); at least the rate.
    pub submit_burst_per_tenant: u32,
    /// Runs not yet ended a lane may have (0: no cap); `lane.max_active_runs` overrides it per lane.
    pub max_active_per_lane: u32,
    /// Task records a lane may have queued — its worker group's consumer lag, as the reaper last
    /// read it — before submits to it are refused (0: no limit); `lane.max_queued` overrides it.
    pub max_queued_per_lane: u64,
}

impl Default for Runs {
    fn default() -> Self {
        let p = baton_core::admission::Policy::default();
        Self {
            lanes: p.lanes,
            max_plan_steps: p.max_plan_steps,
            max_args_bytes: p.max_args_bytes,
            max_goal_bytes: p.max_goal_bytes,
            default_max_steps: p.default_max_steps,
            ceiling_max_steps: p.ceiling_max_steps,
            default_wall_clock_ms: p.default_wall_clock_ms,
            ceiling_wall_clock_ms: p.ceiling_wall_clock_ms,
            default_max_attempts: p.default_max_attempts,
            ceiling_max_attempts: p.ceiling_max_attempts,
            default_initial_backoff_ms: p.default_initial_backoff_ms,
            default_max_backoff_ms: p.default_max_backoff_ms,
            retention_secs: 7 * 24 * 3600,
            idempotency_ttl_secs: 24 * 3600,
            dispatch_grace_ms: 60_000,
            default_max_tokens: p.default_max_tokens,
            ceiling_max_tokens: p.ceiling_max_tokens,
            default_max_cost_micros: p.default_max_cost_micros,
            ceiling_max_cost_micros: p.ceiling_max_cost_micros,
            default_max_tool_calls: p.default_max_tool_calls,
            default_max_rejections: p.default_max_rejections,
            max_active_per_tenant: 0,
            submit_rate_per_tenant: 0,
            submit_burst_per_tenant: 0,
            max_active_per_lane: 0,
            max_queued_per_lane: 0,
        }
    }
}

impl Runs {
    /// How long a finished run is kept, in milliseconds.
    pub fn retention_ms(&self) -> u64 {
        self.retention_secs.saturating_mul(1000)
    }

    fn limits(&self) -> baton_core::admission::Policy {
        baton_core::admission::Policy {
            lanes: self.lanes.clone(),
            max_plan_steps: self.max_plan_steps,
            max_args_bytes: self.max_args_bytes,
            max_goal_bytes: self.max_goal_bytes,
            default_max_steps: self.default_max_steps,
            ceiling_max_steps: self.ceiling_max_steps,
            default_wall_clock_ms: self.default_wall_clock_ms,
            ceiling_wall_clock_ms: self.ceiling_wall_clock_ms,
            default_max_attempts: self.default_max_attempts,
            ceiling_max_attempts: self.ceiling_max_attempts,
            default_initial_backoff_ms: self.default_initial_backoff_ms,
            default_max_backoff_ms: self.default_max_backoff_ms,
            default_max_tokens: self.default_max_tokens,
            ceiling_max_tokens: self.ceiling_max_tokens,
            default_max_cost_micros: self.default_max_cost_micros,
            ceiling_max_cost_micros: self.ceiling_max_cost_micros,
            default_max_tool_calls: self.default_max_tool_calls,
            default_max_rejections: self.default_max_rejections,
            ..baton_core::admission::Policy::default()
        }
    }
}

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

/// How the gateway authenticates callers.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No credentials: a caller acts for the tenant its `x-baton-tenant` header names. For a
    /// laptop or a test stack only; the gateway warns loudly at start.
    #[default]
    None,
    /// Every RPC but health and reflection needs an API key or a JWT; the tenant and the role
    /// come from the credential.
    Required,
}

/// `[auth]`: API keys (in Redis, managed through `KeyService`) and JWT bearer tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// `none` or `required`.
    pub mode: AuthMode,
    /// Environment variable whose value (at least 32 characters) is accepted as an `admin` key
    /// for every tenant: how the first real admin key is created. Empty: none.
    pub bootstrap_admin_key_env: String,
    /// Environment variable holding the HS256 secret of accepted JWTs (at least 32 bytes).
    /// Empty: no HS256.
    pub jwt_hs256_secret_env: String,
    /// PEM files of the RSA (RS256) and EC P-256 (ES256) public keys of accepted JWTs.
    pub jwt_public_keys: Vec<String>,
    /// The `iss` a JWT must carry (required when JWTs are accepted).
    pub jwt_issuer: String,
    /// An `aud` a JWT must carry (required when JWTs are accepted).
    pub jwt_audience: String,
    /// The claim naming the tenant a JWT acts for.
    pub jwt_tenant_claim: String,
    /// The claim naming its role: `submitter`, `operator` or `admin`.
    pub jwt_role_claim: String,
    /// Clock skew allowed when checking `exp` and `nbf`, in seconds.
    pub jwt_leeway_secs: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            bootstrap_admin_key_env: String::new(),
            jwt_hs256_secret_env: String::new(),
            jwt_public_keys: Vec::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_tenant_claim: "tenant".into(),
            jwt_role_claim: "role".into(),
            jwt_leeway_secs: 30,
        }
    }
}

/// `[worker]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Worker {
    /// Lane this worker executes.
    pub lane: String,
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

/// What expiry does to an approval request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// Deny it (actor `baton:expired`).
    Deny,
    /// Wait another `ttl_ms`, `max_escalations` times, then deny.
    Escalate,
}

/// What denial does to a run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnDeny {
    /// Tell the planner, which proposes again (a script run ends `refused`).
    FeedBack,
    /// End the run `refused`.
    EndRun,
}

/// `[approvals]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Approvals {
    /// How long a request waits for a person (0: forever).
    pub ttl_ms: u64,
    /// `deny` or `escalate`.
    pub on_expiry: OnExpiry,
    /// Escalations before an unanswered request is denied.
    pub max_escalations: u32,
    /// `feed_back` or `end_run`.
    pub on_deny: OnDeny,
}

impl Default for Approvals {
    fn default() -> Self {
        Self { ttl_ms: 86_400_000, on_expiry: OnExpiry::Deny, max_escalations: 0, on_deny: OnDeny::FeedBack }
    }
}

impl Approvals {
    /// The core's view.
    pub fn policy(&self) -> baton_core::approval::ApprovalPolicy {
        use baton_core::approval as a;
        a::ApprovalPolicy {
            ttl_ms: self.ttl_ms,
            on_expiry: match self.on_expiry {
                OnExpiry::Deny => a::OnExpiry::Deny,
                OnExpiry::Escalate => a::OnExpiry::Escalate,
            },
            max_escalations: self.max_escalations,
            on_deny: match self.on_deny {
                OnDeny::FeedBack => a::OnDeny::FeedBack,
                OnDeny::EndRun => a::OnDeny::EndRun,
            },
        }
    }
}

/// `[breakers]`: a manifest tool's breaker opens after `failures` retryable failures (5xx,
/// 408/429, timeouts, connection errors) within `window_ms`, seen by any worker; while open,
/// calls are held without spending attempts; after `cooldown_ms` one probe call is let through,
/// and its success closes the breaker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Breakers {
    /// False turns breakers off.
    pub enabled: bool,
    /// Failures that open the breaker.
    pub failures: u32,
    /// Window the failures are counted in.
    pub window_ms: u64,
    /// How long it stays open before a probe.
    pub cooldown_ms: u64,
}

impl Default for Breakers {
    fn default() -> Self {
        Self { enabled: true, failures: 5, window_ms: 30_000, cooldown_ms: 10_000 }
    }
}

/// `[switches]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    /// How often each service re-reads the operator switches from Redis.
    pub refresh_ms: u64,
    /// How long a scripted or committed call of a disabled tool waits before it is tried again.
    pub held_retry_ms: u64,
}

impl Default for Switches {
    fn default() -> Self {
        Self { refresh_ms: 1_000, held_retry_ms: 10_000 }
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

/// `[models.<name>]`: an OpenAI-compatible chat-completions endpoint with tool calling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Model {
    /// Base URL up to the API version, e.g. `https://api.openai.com/v1`; requests go to
    /// `<base_url>/chat/completions`.
    pub base_url: String,
    /// The `model` field of each request.
    pub model: String,
    /// Environment variable holding the API key (sent as `Authorization: Bearer`); empty for none.
    pub api_key_env: String,
    /// Longest one completion may take; a timeout is retried through the retry tiers.
    pub timeout_ms: u64,
    /// `max_tokens` of each request (lowered to what the run's token budget has left).
    pub max_output_tokens: u32,
    /// Price per million input tokens, in the currency of `max_cost_micros` (e.g. USD).
    pub input_price_per_mtok: f64,
    /// Price per million output tokens.
    pub output_price_per_mtok: f64,
    /// Largest response body accepted; a larger one fails the step for good.
    pub max_response_bytes: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            model: String::new(),
            api_key_env: String::new(),
            timeout_ms: 60_000,
            max_output_tokens: 1024,
            input_price_per_mtok: 0.0,
            output_price_per_mtok: 0.0,
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// `[lanes.<name>]`: what a lane runs and how much new work it gets. A run submitted without a
/// lane is routed by weight (an operator's `lane.weight` switch overrides this one) and stamped
/// with its lane's version set, which never changes for that run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lane {
    /// Share of new runs routed here, against the other lanes' weights. When no lane sets one,
    /// every run goes to `main`.
    pub weight: u32,
    /// Agent version.
    pub agent: String,
    /// Model version.
    pub model: String,
    /// Prompt version.
    pub prompt: String,
    /// Policy version.
    pub policy: String,
    /// Tool schema version.
    pub tool_schema: String,
    /// Baton build of the lane's workers (empty: the gateway's own version).
    pub build: String,
}

/// `[agents.<name>]`: a `baton.v1.AgentService` served by the user's own code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Agent {
    /// gRPC endpoint, e.g. `http://127.0.0.1:50071`.
    pub endpoint: String,
    /// Longest one Propose call may take; a timeout is retried through the retry tiers.
    pub timeout_ms: u64,
    /// Largest response accepted.
    pub max_response_bytes: usize,
}

impl Default for Agent {
    fn default() -> Self {
        Self { endpoint: String::new(), timeout_ms: 60_000, max_response_bytes: 1024 * 1024 }
    }
}

/// `[tools]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tools {
    /// Path of the tool manifest (TOML, see docs/agents.md); empty means built-in tools only.
    /// Re-read when it changes and on `AdminService/ReloadTools`, without a restart.
    pub manifest: String,
    /// How often the manifest file (and the fleet's reload signal) is checked.
    pub reload_interval_ms: u64,
}

impl Default for Tools {
    fn default() -> Self {
        Self { manifest: String::new(), reload_interval_ms: 1_000 }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// `[[policy.rules]]`, applied to every proposal of the tenants they name.
    pub rules: Vec<PolicyRule>,
}

/// One `[[policy.rules]]` entry: deny a tool, or cap a numeric argument of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyRule {
    /// Tenant the rule applies to; `*` for all.
    pub tenant: String,
    /// Tool the rule applies to.
    pub tool: String,
    /// Reject every call of the tool.
    pub deny: bool,
    /// Argument to cap: a top-level name or a JSON pointer (`/order/amount`).
    pub arg: String,
    /// Highest value of `arg` allowed.
    pub max: Option<f64>,
    /// Why, shown in the rejection.
    pub reason: String,
}

impl Default for PolicyRule {
    fn default() -> Self {
        Self {
            tenant: "*".into(),
            tool: String::new(),
            deny: false,
            arg: String::new(),
            max: None,
            reason: String::new(),
        }
    }
}

impl Policy {
    /// The rules as the judge applies them.
    pub fn rules(&self) -> Vec<baton_core::judge::Rule> {
        use baton_core::judge::{Rule, RuleEffect};
        self.rules
            .iter()
            .map(|r| Rule {
                tenant: r.tenant.clone(),
                tool: r.tool.clone(),
                effect: match r.max {
                    Some(max) if !r.deny => RuleEffect::Cap { arg: r.arg.clone(), max },
                    _ => RuleEffect::Deny,
                },
                reason: r.reason.clone(),
            })
            .collect()
    }
}
