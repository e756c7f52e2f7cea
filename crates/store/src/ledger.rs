//! The effect ledger behind the `ledger` tool: every call is appended under its idempotency
//! key with the fence it ran under, so an audit can prove no effect re-ran after its commit.

use redis::AsyncCommands as _;

use crate::{keys, Result, Store};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCall {
    /// Fence of the claim the call ran under.
    pub fence: u64,
    /// Worker that made the call.
    pub worker: String,
}

impl Store {
    /// Records a call; returns how many calls the key has now.
    pub async fn ledger_record(&self, idempotency_key: &str, fence: u64, worker: &str) -> Result<u64> {
        let mut conn = self.conn().await?;
        Ok(conn.rpush(keys::ledger(idempotency_key), format!("{fence}|{worker}")).await?)
    }

    /// Every call recorded under the key, in order.
    pub async fn ledger_calls(&self, idempotency_key: &str) -> Result<Vec<LedgerCall>> {
        let mut conn = self.conn().await?;
        let raw: Vec<String> = conn.lrange(keys::ledger(idempotency_key), 0, -1).await?;
        Ok(raw
            .iter()
            .filter_map(|r| r.split_once('|'))
            .map(|(f, w)| LedgerCall { fence: f.parse().unwrap_or(0), worker: w.to_string() })
            .collect())
    }
}
