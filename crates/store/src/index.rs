//! The `baton:inflight` index: runs whose step is leased, or whose hand-on to Kafka is not yet
//! confirmed, scored by when the reaper should look at them. Entries are hints: the reaper
//! re-checks the run's own keys before acting.

use redis::AsyncCommands as _;

use crate::{keys, scripts::scripts, Result, Store};

impl Store {
    /// Sets the run's due time in the in-flight index.
    pub async fn inflight_set(&self, run_id: &str, due_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: () = conn.zadd(keys::INFLIGHT, run_id, due_ms).await?;
        Ok(())
    }

    /// Removes the run from the index if its due time is still `due_ms` (nobody took over since).
    pub async fn inflight_clear(&self, run_id: &str, due_ms: i64) -> Result<bool> {
        let mut conn = self.conn().await?;
        let removed: i64 = scripts().unindex.key(keys::INFLIGHT).arg(run_id).arg(due_ms).invoke_async(&mut conn).await?;
        Ok(removed == 1)
    }

    /// Removes the run from the index unconditionally (it is terminal or gone).
    pub async fn inflight_drop(&self, run_id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: () = conn.zrem(keys::INFLIGHT, run_id).await?;
        Ok(())
    }

    /// Up to `limit` entries due at or before `now_ms`, earliest first.
    pub async fn inflight_due(&self, now_ms: i64, limit: usize) -> Result<Vec<(String, i64)>> {
        let mut conn = self.conn().await?;
        let due: Vec<(String, i64)> = conn.zrangebyscore_limit_withscores(keys::INFLIGHT, "-inf", now_ms, 0, limit as isize).await?;
        Ok(due)
    }

    /// The earliest due time in the index, if any.
    pub async fn inflight_next_due(&self) -> Result<Option<i64>> {
        let mut conn = self.conn().await?;
        let first: Vec<(String, i64)> = conn.zrange_withscores(keys::INFLIGHT, 0, 0).await?;
        Ok(first.first().map(|(_, s)| *s))
    }

    /// Milliseconds left on the run's lease, or `None` if nobody holds it.
    pub async fn lease_remaining_ms(&self, run_id: &str) -> Result<Option<i64>> {
        let mut conn = self.conn().await?;
        let ttl: i64 = conn.pttl(keys::lease(run_id)).await?;
        Ok((ttl >= 0).then_some(ttl))
    }
}

impl Store {
    /// Adds the run to the in-flight index only if it has no entry yet.
    pub async fn inflight_set_if_absent(&self, run_id: &str, due_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::cmd("ZADD").arg(keys::INFLIGHT).arg("NX").arg(due_ms).arg(run_id).query_async(&mut conn).await?;
        Ok(())
    }
}
