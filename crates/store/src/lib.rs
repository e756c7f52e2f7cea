//! Baton's Redis layer (DESIGN §4). Atomic per-run operations are Lua scripts touching only
//! `{R}` keys ([`scripts`]); global indexes are updated beside them, and every reader of an
//! index re-checks the per-run keys before acting.

mod index;
pub mod keys;
mod lease;
mod runs;
mod scripts;

use deadpool_redis::{Config as PoolConfig, Pool, Runtime};

pub use lease::{Claim, CommitOutcome, Lease};
pub use runs::{Reservation, RunPage, StoredEvent};

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
    /// The pool could not be built from the config.
    #[error("redis config: {0}")]
    Config(String),
}

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, Error>;

/// A handle on Redis. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Builds the connection pool (connections are opened lazily).
    pub fn new(config: &baton_config::Redis) -> Result<Self> {
        let mut pool_config = PoolConfig::from_url(config.url.clone());
        pool_config.pool = Some(deadpool_redis::PoolConfig::new(config.pool_size));
        let pool = pool_config.create_pool(Some(Runtime::Tokio1)).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { pool })
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
