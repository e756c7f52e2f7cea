//! Worker liveness, so a dead worker's runs resume in seconds instead of after their lease TTL.
//! Each worker beats into `baton:workers` (a sorted set: worker id → last beat, ms) and keeps
//! the runs it holds in `baton:worker-runs:<id>`. The reaper finds workers whose beat is older
//! than the liveness TTL, breaks the leases they still hold, and recovers those runs at once.
//! The lease TTL still guards against a worker that is alive but stuck.

use redis::AsyncCommands as _;

use crate::{keys, scripts::scripts, Result, Store};

impl Store {
    /// Records that worker `id` is alive now.
    pub async fn worker_beat(&self, id: &str, now_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: () = conn.zadd(keys::WORKERS, id, now_ms).await?;
        Ok(())
    }

    /// Removes worker `id` from the registry (it stopped cleanly, or the reaper is done with it).
    pub async fn worker_gone(&self, id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.zrem(keys::WORKERS, id).ignore().del(keys::worker_runs(id)).ignore();
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Workers whose last beat is older than `ttl_ms` before `now_ms`.
    pub async fn dead_workers(&self, now_ms: i64, ttl_ms: u64) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        Ok(conn.zrangebyscore(keys::WORKERS, "-inf", now_ms - ttl_ms as i64).await?)
    }

    /// Notes that worker `id` holds run `run_id` (set at claim, cleared when the slice ends).
    pub async fn worker_holds(&self, id: &str, run_id: &str, holds: bool) -> Result<()> {
        let mut conn = self.conn().await?;
        let key = keys::worker_runs(id);
        let _: () = if holds { conn.sadd(key, run_id).await? } else { conn.srem(key, run_id).await? };
        Ok(())
    }

    /// The runs worker `id` was holding.
    pub async fn worker_runs(&self, id: &str) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        Ok(conn.smembers(keys::worker_runs(id)).await?)
    }

    /// Breaks the lease of `run_id` if dead worker `id` holds it. True if it did.
    pub async fn break_lease(&self, run_id: &str, id: &str) -> Result<bool> {
        let mut conn = self.conn().await?;
        let broken: i64 = scripts().break_lease.key(keys::lease(run_id)).arg(id).invoke_async(&mut conn).await?;
        Ok(broken == 1)
    }
}
