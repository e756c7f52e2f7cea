//! Baton's Redis layer (DESIGN §4). Atomic per-run operations are Lua scripts touching only
//! `{R}` keys ([`scripts`]); global indexes are updated beside them, and every reader of an
//! index re-checks the per-run keys before acting.

mod admission;
mod api_keys;
mod audit;
mod breakers;
mod conn;
mod dead_letters;
mod fleet;
mod index;
pub mod keys;
pub mod layout;
mod lease;
mod ledger;
pub mod metric_definitions;
mod owners;
mod publish;
mod runs;
mod scripts;
mod shards;
mod sweep;
mod switches;
mod update;
mod waiting;
mod wake;
mod watch;
mod workers;

use std::time::Duration;

pub use admission::Bucket;
pub use audit::{AuditEntry, AUDIT_MAX_LEN};
pub use breakers::{BreakerGate, BreakerLimits, BreakerView};
pub use conn::Conn;
pub use dead_letters::DeadLetterPage;
pub use fleet::FleetSample;
pub use index::{shards, Index};
pub use lease::{Claim, CommitOutcome, Granted, Lease};
pub use ledger::LedgerCall;
pub use runs::{Reservation, RunPage, RunView, StoredEvent};
pub use sweep::{Listing, ListingScan};
pub use switches::SwitchSetting;
pub use update::{Snapshot, UpdateOutcome};
pub use wake::subscribe_wakes;
pub use watch::{EventReader, StreamPos};

/// Errors from the store, with the run or key they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be had from the pool.
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// A command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A reply had an unexpected shape.
    #[error("redis reply: {0}")]
    Reply(#[from] redis::ParsingError),
    /// A stored checkpoint or event could not be decoded.
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The key holding it.
        key: String,
        /// The decode error.
        reason: String,
    },
    /// A checkpoint written by a newer Baton, in a schema this build cannot read safely: it is
    /// neither executed nor overwritten (the run waits for an upgraded service).
    #[error("{key} has checkpoint schema {found}; this build reads schemas up to {supported}: upgrade it")]
    NewerSchema {
        /// The key holding it.
        key: String,
        /// The checkpoint's schema version.
        found: u32,
        /// The newest schema this build reads.
        supported: u32,
    },
    /// The pool could not be built from the config.
    #[error("redis config: {0}")]
    Config(String),
    /// A write reached the primary but fewer replicas than required confirmed it in time: a
    /// failover may lose it, so it does not count as done.
    #[error("write confirmed by {acked} replicas of the {wanted} required (redis.min_replicas_acked)")]
    NotReplicated {
        /// Replicas required.
        wanted: u32,
        /// Replicas that confirmed.
        acked: u32,
    },
}

impl Error {
    /// True when no pooled connection came free in time (every one busy), rather than Redis
    /// failing to answer.
    pub fn is_pool_exhausted(&self) -> bool {
        matches!(self, Error::Pool(deadpool_redis::PoolError::Timeout(deadpool_redis::TimeoutType::Wait)))
    }
}

/// Longest wait for one Redis reply.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, Error>;

/// A handle on Redis (a single server or a cluster). Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: conn::Backend,
    /// Replicas that must confirm each fenced write.
    replicas: conn::Replicas,
    /// Masks configured argument fields and secrets in every event written.
    redaction: std::sync::Arc<baton_core::redact::Redaction>,
}

impl Store {
    /// This store, masking what `redaction` names in every event it writes.
    pub fn with_redaction(mut self, redaction: std::sync::Arc<baton_core::redact::Redaction>) -> Self {
        self.redaction = redaction;
        self
    }

    /// A store for `config`: a pool of connections to one Redis, or a Redis Cluster
    /// (`redis.cluster`); connections are opened lazily. Replies may take up to
    /// [`RESPONSE_TIMEOUT`], which bounds blocking reads such as a watch's `XREAD BLOCK`.
    pub fn new(config: &baton_config::Redis) -> Result<Self> {
        Ok(Self {
            backend: conn::Backend::new(config)?,
            replicas: conn::Replicas {
                min_acked: config.min_replicas_acked,
                timeout_ms: config.replica_ack_timeout_ms,
            },
            redaction: Default::default(),
        })
    }

    /// Round-trips a PING; used by readiness probes.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }
}
