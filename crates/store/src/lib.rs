//! Baton's Redis layer (DESIGN §4). Atomic per-run operations are Lua scripts touching only
//! `{R}` keys ([`scripts`]); global indexes are updated beside them, and every reader of an
//! index re-checks the per-run keys before acting.

mod admission;
mod api_keys;
mod audit;
mod breakers;
mod dead_letters;
mod fleet;
mod index;
pub mod keys;
pub mod layout;
mod lease;
mod ledger;
mod owners;
mod publish;
mod runs;
mod scripts;
mod switches;
mod update;
mod waiting;
mod wake;
mod watch;
mod workers;

use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use redis::AsyncConnectionConfig;

pub use admission::Bucket;
pub use audit::{AuditEntry, AUDIT_MAX_LEN};
pub use breakers::{BreakerGate, BreakerLimits, BreakerView};
pub use fleet::FleetSample;
pub use index::Index;
pub use lease::{Claim, CommitOutcome, Granted, Lease};
pub use ledger::LedgerCall;
pub use runs::{Reservation, RunPage, RunView, StoredEvent};
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

/// A handle on Redis. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Masks configured argument fields and secrets in every event written.
    redaction: std::sync::Arc<baton_core::redact::Redaction>,
}

impl Store {
    /// This store, masking what `redaction` names in every event it writes.
    pub fn with_redaction(mut self, redaction: std::sync::Arc<baton_core::redact::Redaction>) -> Self {
        self.redaction = redaction;
        self
    }

    /// Builds the connection pool (connections are opened lazily). Replies may take up to
    /// [`RESPONSE_TIMEOUT`], which bounds blocking reads such as a watch's `XREAD BLOCK`.
    pub fn new(config: &baton_config::Redis) -> Result<Self> {
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let manager = Manager::new_with_config(config.url.as_str(), connection)?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { pool, redaction: Default::default() })
    }

    /// A pooled connection.
    pub async fn conn(&self) -> Result<deadpool_redis::Connection> {
        Ok(self.pool.get().await?)
    }

    /// Round-trips a PING; used by readiness probes.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }
}
