//! Partition owners of a lane (`baton:owners:<lane>`): partition → `<worker>|<fresh until ms>`,
//! written by each worker for the partitions it owns; read by the ownership watchdog.

use std::collections::HashMap;

use redis::AsyncCommands as _;

use crate::{Result, Store};

impl Store {
    /// Records `worker` as owner of `partitions` until `fresh_until_ms`, and returns every
    /// partition's latest owner expiry.
    pub async fn publish_owners(
        &self,
        key: &str,
        worker: &str,
        partitions: &[i32],
        fresh_until_ms: i64,
    ) -> Result<HashMap<i32, i64>> {
        let mut conn = self.conn().await?;
        if !partitions.is_empty() {
            let items: Vec<(i32, String)> =
                partitions.iter().map(|p| (*p, format!("{worker}|{fresh_until_ms}"))).collect();
            let _: () = conn.hset_multiple(key, &items).await?;
        }
        let all: HashMap<i32, String> = conn.hgetall(key).await?;
        Ok(all
            .into_iter()
            .filter_map(|(p, v)| v.rsplit_once('|').and_then(|(_, until)| until.parse().ok()).map(|u| (p, u)))
            .collect())
    }

    /// Partitions of `lane`'s task topic whose owner is a worker that beat within `ttl_ms`:
    /// where a task is taken at once, without waiting for the consumer group to rebalance.
    pub async fn live_partitions(&self, lane: &str, now_ms: i64, ttl_ms: u64) -> Result<Vec<i32>> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.hgetall(crate::keys::owners(lane)).zrangebyscore(crate::keys::WORKERS, now_ms - ttl_ms as i64, "+inf");
        let (owners, alive): (HashMap<i32, String>, Vec<String>) = pipe.query_async(&mut conn).await?;
        let mut live: Vec<i32> = owners
            .into_iter()
            .filter_map(|(p, v)| {
                let (worker, until) = v.rsplit_once('|')?;
                let fresh = until.parse::<i64>().ok()? > now_ms;
                (fresh && alive.iter().any(|a| a == worker)).then_some(p)
            })
            .collect();
        live.sort_unstable();
        Ok(live)
    }
}
