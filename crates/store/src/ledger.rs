//! The effect ledger behind the `ledger` tool: every call is appended to its run's ledger
//! (`baton:ledger:{R}`) under its idempotency key with the fence it ran under, so an audit can
//! prove no effect re-ran after its commit. The ledger expires with its run.

use crate::{keys, Result, Store};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCall {
    /// Fence of the claim the call ran under.
    pub fence: u64,
    /// Worker that made the call.
    pub worker: String,
}

/// The run id of an idempotency key `<run>:<step>`.
fn run_of(idempotency_key: &str) -> &str {
    idempotency_key.rsplit_once(':').map_or(idempotency_key, |(r, _)| r)
}

impl Store {
    /// Records a call; returns how many calls the key has now. A ledger written after its run
    /// ended (a stale worker) still expires, after `ttl_ms`; a live run's next commit keeps it.
    pub async fn ledger_record(&self, idempotency_key: &str, fence: u64, worker: &str, ttl_ms: u64) -> Result<u64> {
        let mut conn = self.conn().await?;
        let key = keys::ledger(run_of(idempotency_key));
        let (_, _, calls): (i64, i64, Vec<String>) = redis::pipe()
            .rpush(&key, format!("{idempotency_key}|{fence}|{worker}"))
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .arg("NX")
            .lrange(&key, 0, -1)
            .query_async(&mut conn)
            .await?;
        let prefix = format!("{idempotency_key}|");
        Ok(calls.iter().filter(|c| c.starts_with(&prefix)).count() as u64)
    }

    /// Every call recorded under the key, in order.
    pub async fn ledger_calls(&self, idempotency_key: &str) -> Result<Vec<LedgerCall>> {
        let mut conn = self.conn().await?;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(keys::ledger(run_of(idempotency_key)))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        let prefix = format!("{idempotency_key}|");
        Ok(raw
            .iter()
            .filter_map(|r| r.strip_prefix(&prefix))
            .filter_map(|r| r.split_once('|'))
            .map(|(f, w)| LedgerCall { fence: f.parse().unwrap_or(0), worker: w.to_string() })
            .collect())
    }
}
