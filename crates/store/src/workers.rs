//! Worker liveness, so a dead worker's runs resume in seconds instead of after their lease TTL.
//! Each worker beats into `baton:workers` (a sorted set: worker id → last beat, ms) and keeps
//! the runs it holds in `baton:worker-runs:<id>`. The reaper finds workers whose beat is older
//! than the liveness TTL, breaks the leases they still hold, and recovers those runs at once.
//! The lease TTL still guards against a worker that is alive but stuck. Every beat and every
//! test of death uses the Redis server's clock, never a host's: a worker whose clock is seconds
//! off is neither declared dead while it beats nor kept alive after it stops.

use redis::AsyncCommands as _;

use crate::{keys, scripts::scripts, Result, Store};

impl Store {
    /// Records that worker `id` is alive now; returns the server's time of the beat (ms).
    pub async fn worker_beat(&self, id: &str) -> Result<i64> {
        let mut conn = self.conn().await?;
        Ok(scripts().beat.key(keys::WORKERS).arg(id).invoke_async(&mut conn).await?)
    }

    /// Removes worker `id` from the registry (it stopped cleanly, or the reaper is done with it).
    pub async fn worker_gone(&self, id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.zrem(keys::WORKERS, id).ignore().del(keys::worker_runs(id)).ignore();
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Declares worker `id` dead now (its beat moves to the epoch): the reaper's next failover
    /// sweep breaks its leases and recovers its runs. For a worker that was replaced (a restart
    /// under the same name); a worker that is in fact alive undoes it with its next beat.
    pub async fn worker_declare_dead(&self, id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::cmd("ZADD").arg(keys::WORKERS).arg("XX").arg(0).arg(id).query_async(&mut conn).await?;
        Ok(())
    }

    /// Registered workers whose id begins with `prefix`.
    pub async fn workers_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        let (mut cursor, mut found) = (0u64, Vec::new());
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("ZSCAN")
                .arg(keys::WORKERS)
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            // ZSCAN answers member, score, member, score, …
            found.extend(page.into_iter().step_by(2).filter(|id| id.starts_with(prefix)));
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }

    /// Workers whose last beat is more than `ttl_ms` old.
    pub async fn dead_workers(&self, ttl_ms: u64) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        Ok(scripts().dead_workers.key(keys::WORKERS).arg(ttl_ms).invoke_async(&mut conn).await?)
    }

    /// Whether worker `id` is still without a beat in the last `ttl_ms`.
    pub async fn worker_still_dead(&self, id: &str, ttl_ms: u64) -> Result<bool> {
        let mut conn = self.conn().await?;
        let dead: i64 = scripts().worker_dead.key(keys::WORKERS).arg(id).arg(ttl_ms).invoke_async(&mut conn).await?;
        Ok(dead == 1)
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
