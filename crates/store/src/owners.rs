//! Partition owners of a lane (`baton:owners:<lane>`): partition → `<worker>|<fresh until ms>`,
//! written by each worker for the partitions it owns; read by the ownership watchdog and by
//! every producer's routing. Expiries are on the Redis server's clock, like liveness beats.

use std::collections::HashMap;

use crate::{keys, scripts::scripts, Result, Store};

impl Store {
    /// Records `worker` as owner of `partitions` for `fresh_for_ms` more, and returns the
    /// server's time now with every partition's latest owner expiry (same clock).
    pub async fn publish_owners(
        &self,
        key: &str,
        worker: &str,
        partitions: &[i32],
        fresh_for_ms: u64,
    ) -> Result<(i64, HashMap<i32, i64>)> {
        let mut conn = self.conn().await?;
        let mut invocation = scripts().owners_publish.prepare_invoke();
        invocation.key(key).arg(worker).arg(fresh_for_ms);
        for p in partitions {
            invocation.arg(*p);
        }
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        let now = reply.first().copied().unwrap_or_default();
        let owners = reply[1.min(reply.len())..].chunks_exact(2).map(|pair| (pair[0] as i32, pair[1])).collect();
        Ok((now, owners))
    }

    /// Partitions of `lane`'s task topic whose owner is a worker that beat within `ttl_ms`:
    /// where a task is taken at once, without waiting for the consumer group to rebalance.
    pub async fn live_partitions(&self, lane: &str, ttl_ms: u64) -> Result<Vec<i32>> {
        let mut conn = self.conn().await?;
        let mut live: Vec<i32> = scripts()
            .owners_live
            .key(keys::owners(lane))
            .key(keys::WORKERS)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        live.sort_unstable();
        Ok(live)
    }
}
