//! Redis key names (DESIGN §4). Per-run keys are hash-tagged `{<run id>}` so one run lives in one
//! slot of a Redis Cluster. The due-time indexes are split into [`SHARDS`] shards tagged
//! `{idx:NN}` (a run's entries all go to its shard, so one pipeline or script touches one slot).
//! Fleet-wide singletons share the tag `{fleet}`; per-tenant and per-lane listings are one key
//! each, spread over the slots by their names. On a single Redis the tags change nothing.

/// The checkpoint hash of run `r`.
pub fn run(r: &str) -> String {
    format!("baton:run:{{{r}}}")
}

/// The lease of run `r`'s in-flight step.
pub fn lease(r: &str) -> String {
    format!("baton:lease:{{{r}}}")
}

/// The fencing counter of run `r`.
pub fn fence(r: &str) -> String {
    format!("baton:fence:{{{r}}}")
}

/// The spec of run `r` (immutable after admission).
pub fn spec(r: &str) -> String {
    format!("baton:spec:{{{r}}}")
}

/// The step history of run `r`: one StepRecord per recorded step, in order.
pub fn steps(r: &str) -> String {
    format!("baton:steps:{{{r}}}")
}

/// The event stream of run `r`.
pub fn events(r: &str) -> String {
    format!("baton:events:{{{r}}}")
}

/// A submit idempotency key of `tenant`.
pub fn idempotency(tenant: &str, key: &str) -> String {
    format!("baton:idem:{tenant}:{key}")
}

/// Index of a tenant's runs by creation time (for ListRuns).
pub fn tenant_runs(tenant: &str) -> String {
    format!("{TENANT_RUNS_PREFIX}{tenant}")
}

/// What every [`tenant_runs`] key starts with.
pub const TENANT_RUNS_PREFIX: &str = "baton:tenant-runs:";

/// How many shards each due-time index is split into (fixed: changing it strands entries).
pub const SHARDS: u16 = 16;

/// The shard of run `r` (FNV-1a of its id).
pub fn shard_of(r: &str) -> u16 {
    let hash = r.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % u64::from(SHARDS)) as u16
}

/// Shard `shard` of the index of runs whose step is in flight or whose hand-on is unconfirmed,
/// by due time.
pub fn inflight(shard: u16) -> String {
    format!("baton:{{idx:{shard:02}}}:inflight")
}

/// Shard `shard` of the index of run deadlines.
pub fn deadlines(shard: u16) -> String {
    format!("baton:{{idx:{shard:02}}}:deadlines")
}

/// Shard `shard` of the index of waiting runs by wake time.
pub fn timers(shard: u16) -> String {
    format!("baton:{{idx:{shard:02}}}:timers")
}

/// Calls recorded by the `ledger` tool for run `r`: `<idempotency key>|<fence>|<worker>`, in
/// order. Expires with the run.
pub fn ledger(r: &str) -> String {
    format!("baton:ledger:{{{r}}}")
}

/// The dead letter of run `r`: `letter` (protobuf `DeadLetter`) and `sent` (1 once the record
/// is on the dead-letter topic). Written by the commit that dead-letters the run, in its slot.
pub fn dead_letter(r: &str) -> String {
    format!("baton:letter:{{{r}}}")
}

/// Dead letters by run id, as written before they moved into the run's slot (read, and
/// removed, for upgrades only).
pub const LEGACY_DEAD_LETTERS: &str = "baton:dlq";

/// The lease on shard `shard` of a role: an index shard for `reaper` and `scheduler` (the member
/// that sweeps it), a partition of lane L's task topic for `worker-L` (the worker that consumes it).
pub fn shard_owner(shard: u16, role: &str) -> String {
    format!("baton:{{idx:{shard:02}}}:owner:{role}")
}

/// Live members of a role (`reaper`, `scheduler`, `worker-<lane>`): member id → last beat (ms, the Redis server's clock).
pub fn members(role: &str) -> String {
    format!("baton:{{fleet}}:members:{role}")
}

/// Dead letters by time, for listing.
pub const DEAD_LETTERS_BY_TIME: &str = "baton:{fleet}:dlq:by-time";

/// The audit log stream.
pub const AUDIT: &str = "baton:{fleet}:audit";

/// The tool manifest's reload generation.
pub const TOOLS_RELOAD: &str = "baton:{fleet}:tools:reload";

/// Live workers: id → last beat (ms, the Redis server's clock).
pub const WORKERS: &str = "baton:{fleet}:workers";

/// The runs worker `id` holds.
pub fn worker_runs(id: &str) -> String {
    format!("baton:{{fleet}}:worker-runs:{id}")
}

/// Partition owners of a lane's task topic: partition → `<worker>|<fresh until ms>`.
pub fn owners(lane: &str) -> String {
    format!("baton:{{fleet}}:owners:{lane}")
}

/// Pub/sub channel of wake-ups: the name of a topic that has new records.
pub const WAKE: &str = "baton:wake";

/// The circuit breaker of tool `t`: state and until when.
pub fn breaker(t: &str) -> String {
    format!("baton:breaker:{{{t}}}")
}

/// Recent failures of tool `t`, by time.
pub fn breaker_failures(t: &str) -> String {
    format!("baton:breaker-failures:{{{t}}}")
}

/// Operator switches in force: `<switch>:<target>` → `<value>|<actor>|<at ms>|<reason>`.
pub const SWITCHES: &str = "baton:{fleet}:switches";

/// Runs waiting for an approval, of one tenant, by request time.
pub fn approvals(tenant: &str) -> String {
    format!("{APPROVALS_PREFIX}{tenant}")
}

/// What every [`approvals`] key starts with.
pub const APPROVALS_PREFIX: &str = "baton:approvals:";

/// Runs waiting for an approval, of every tenant, by request time (for the fleet gauges).
pub const APPROVALS_ALL: &str = "baton:{fleet}:approvals-all";

/// Runs of one tenant not known to have ended, by admission time (pruned when read at the cap).
pub fn active_runs(tenant: &str) -> String {
    format!("{ACTIVE_RUNS_PREFIX}{tenant}")
}

/// What every [`active_runs`] key starts with.
pub const ACTIVE_RUNS_PREFIX: &str = "baton:active:";

/// Runs of one lane not known to have ended, by admission time (pruned when read at the cap).
pub fn lane_active_runs(lane: &str) -> String {
    format!("{LANE_ACTIVE_RUNS_PREFIX}{lane}")
}

/// What every [`lane_active_runs`] key starts with.
pub const LANE_ACTIVE_RUNS_PREFIX: &str = "baton:lane-active:";

/// A tenant's submit token bucket: `tokens`, `at` (ms).
pub fn submit_bucket(tenant: &str) -> String {
    format!("baton:rate:{tenant}")
}

/// Each lane's consumer lag as the reaper last read it: lane → `<records>|<at ms>`.
pub const LANE_LAG: &str = "baton:{fleet}:lane-lag";

/// API keys by key id (protobuf `ApiKey`, never the secret).
pub const API_KEYS: &str = "baton:{fleet}:apikeys";

/// API key ids by the SHA-256 (hex) of their secret.
pub const API_KEYS_BY_HASH: &str = "baton:{fleet}:apikeys:by-hash";
