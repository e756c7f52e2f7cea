//! Sorted-set indexes of runs by due time (DESIGN §4): [`Index::Inflight`] (leased steps and
//! unconfirmed hand-ons, for the reaper), [`Index::Deadlines`] (run deadlines, for the reaper)
//! and [`Index::Timers`] (waiting runs, for the scheduler). Each is split into
//! [`keys::SHARDS`] shards; a run's entries live in its shard ([`keys::shard_of`]), so writes
//! name the run and readers sweep one shard at a time. Entries are hints: every reader
//! re-checks the run's own keys before acting.

use redis::AsyncCommands as _;

use crate::{keys, scripts::scripts, Result, Store};

/// One of the fleet's due-time indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// `baton:{idx:NN}:inflight`
    Inflight,
    /// `baton:{idx:NN}:deadlines`
    Deadlines,
    /// `baton:{idx:NN}:timers`
    Timers,
}

impl Index {
    /// The Redis key of shard `shard`.
    pub fn key(self, shard: u16) -> String {
        match self {
            Index::Inflight => keys::inflight(shard),
            Index::Deadlines => keys::deadlines(shard),
            Index::Timers => keys::timers(shard),
        }
    }

    /// The Redis key of the shard holding run `run_id`'s entry.
    pub fn key_of(self, run_id: &str) -> String {
        self.key(keys::shard_of(run_id))
    }
}

/// Every shard number, in order.
pub fn shards() -> impl Iterator<Item = u16> {
    0..keys::SHARDS
}

impl Store {
    /// Sets the run's due time in `index`.
    pub async fn index_set(&self, index: Index, run_id: &str, due_ms: i64) -> Result<()> {
        self.index_set_all(run_id, &[(index, due_ms)]).await
    }

    /// Sets the run's due time in several indexes in one round trip (one shard: one slot). The
    /// entries are what finds the run after a crash, so with `redis.min_replicas_acked` they wait
    /// for the replicas too.
    pub async fn index_set_all(&self, run_id: &str, entries: &[(Index, i64)]) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        for (index, due_ms) in entries {
            pipe.zadd(index.key_of(run_id), run_id, *due_ms).ignore();
        }
        self.pipe_acked(&mut conn, pipe).await
    }

    /// Adds the run to `index` only if it has no entry yet.
    pub async fn index_set_if_absent(&self, index: Index, run_id: &str, due_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::cmd("ZADD")
            .arg(index.key_of(run_id))
            .arg("NX")
            .arg(due_ms)
            .arg(run_id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes the run from `index` if its due time is still `due_ms`: the entry is the one the
    /// caller wrote or read, and nobody wrote a fresher one since (a requeue, a wake, a new
    /// claim). Every removal is conditional so; an unconditional one could drop the entry a
    /// resume just wrote and strand the run.
    pub async fn index_clear(&self, index: Index, run_id: &str, due_ms: i64) -> Result<bool> {
        let mut conn = self.conn().await?;
        let removed: i64 =
            scripts().unindex.key(index.key_of(run_id)).arg(run_id).arg(due_ms).invoke_async(&mut conn).await?;
        Ok(removed == 1)
    }

    /// [`Store::index_clear`] of several entries in one round trip.
    pub async fn index_clear_all(&self, run_id: &str, entries: &[(Index, i64)]) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        for (index, due_ms) in entries {
            pipe.invoke_script(scripts().unindex.key(index.key_of(run_id)).arg(run_id).arg(*due_ms)).ignore();
        }
        let _: () = self.query_loading(&mut conn, &pipe, &[&scripts().unindex]).await?;
        Ok(())
    }

    /// Up to `limit` entries of shard `shard` of `index` due at or before `now_ms`, earliest first.
    pub async fn index_due(&self, index: Index, shard: u16, now_ms: i64, limit: usize) -> Result<Vec<(String, i64)>> {
        let mut conn = self.conn().await?;
        Ok(conn.zrangebyscore_limit_withscores(index.key(shard), "-inf", now_ms, 0, limit as isize).await?)
    }

    /// The earliest due time in shard `shard` of `index`, if any.
    pub async fn index_next_due(&self, index: Index, shard: u16) -> Result<Option<i64>> {
        let mut conn = self.conn().await?;
        let first: Vec<(String, i64)> = conn.zrange_withscores(index.key(shard), 0, 0).await?;
        Ok(first.first().map(|(_, s)| *s))
    }

    /// The run's due time in `index`, if it has an entry.
    pub async fn index_score(&self, index: Index, run_id: &str) -> Result<Option<i64>> {
        let mut conn = self.conn().await?;
        Ok(conn.zscore(index.key_of(run_id), run_id).await?)
    }

    /// Milliseconds left on the run's lease, or `None` if nobody holds it.
    pub async fn lease_remaining_ms(&self, run_id: &str) -> Result<Option<i64>> {
        let mut conn = self.conn().await?;
        let ttl: i64 = conn.pttl(keys::lease(run_id)).await?;
        Ok((ttl >= 0).then_some(ttl))
    }
}
