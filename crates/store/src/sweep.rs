//! Listings whose runs are gone. A run's own keys expire with it (its retention); the sorted
//! sets that list runs — a tenant's runs, the active sets behind the caps, approval requests,
//! the dead-letter time index — are swept instead: a bounded page of one listing at a time is
//! checked against the runs it names, and entries that no longer hold are removed (only as
//! read: an entry re-listed meanwhile under another score stays). The listing keys themselves
//! are found by a `SCAN` spread over many calls, so a sweep costs the same whatever the size
//! of the keyspace.

use redis::AsyncCommands as _;

use crate::{keys, scripts::scripts, Result, Store};

/// Which listing a key is, and so which of its entries the sweep removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `baton:tenant-runs:<t>`: ListRuns shows every run until it expires.
    TenantRuns,
    /// `baton:active:<t>`, `baton:lane-active:<l>`, `baton:approvals:<t>`,
    /// `baton:approvals-all`: only runs not ended belong.
    NotEnded,
    /// `baton:dlq:by-time`: a letter lives as long as its run.
    DeadLetters,
}

impl Listing {
    /// The listing a key is, if it is one.
    pub fn of(key: &str) -> Option<Self> {
        if key.starts_with(keys::TENANT_RUNS_PREFIX) {
            Some(Listing::TenantRuns)
        } else if key == keys::DEAD_LETTERS_BY_TIME {
            Some(Listing::DeadLetters)
        } else if key.starts_with(keys::ACTIVE_RUNS_PREFIX)
            || key.starts_with(keys::LANE_ACTIVE_RUNS_PREFIX)
            || key.starts_with(keys::APPROVALS_PREFIX)
            || key == keys::APPROVALS_ALL
        {
            Some(Listing::NotEnded)
        } else {
            None
        }
    }
}

impl Store {
    /// One step of a `SCAN` for listing keys: the next cursor (0 when a pass is complete) and the
    /// listings among the keys it looked at (up to about `count`).
    pub async fn scan_listings(&self, cursor: u64, count: usize) -> Result<(u64, Vec<String>)> {
        let mut conn = self.conn().await?;
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("baton:*")
            .arg("COUNT")
            .arg(count)
            .arg("TYPE")
            .arg("zset")
            .query_async(&mut conn)
            .await?;
        Ok((next, found.into_iter().filter(|k| Listing::of(k).is_some()).collect()))
    }

    /// Checks `limit` entries of listing `key` from rank `from` and removes those that no longer
    /// hold. Returns how many it looked at, how many it removed, and the rank to go on from (0:
    /// wrap around).
    pub async fn sweep_listing(&self, key: &str, from: usize, limit: usize) -> Result<(usize, usize, usize)> {
        let Some(listing) = Listing::of(key) else { return Ok((0, 0, 0)) };
        let mut conn = self.conn().await?;
        let entries: Vec<(String, i64)> =
            conn.zrange_withscores(key, from as isize, (from + limit.max(1)) as isize - 1).await?;
        if entries.is_empty() {
            return Ok((0, 0, 0));
        }
        let reads = entries.iter().map(|(id, _)| redis::cmd("HGET").arg(keys::run(id)).arg("status").clone()).collect();
        let statuses: Vec<Option<String>> = self.each(reads).await?;
        let stale = |status: &Option<String>| match (listing, status) {
            (_, None) => true,
            (Listing::NotEnded, Some(s)) => baton_core::status::parse(s).is_some_and(baton_core::status::is_terminal),
            _ => false,
        };
        let mut removal = redis::pipe();
        let mut removed = 0;
        for ((run_id, score), status) in entries.iter().zip(&statuses) {
            if stale(status) {
                removal.invoke_script(scripts().unindex.key(key).arg(run_id).arg(*score)).ignore();
                removed += 1;
            }
        }
        if removed > 0 {
            let () = self.query_loading(&mut conn, &removal, &[&scripts().unindex]).await?;
        }
        let next = if entries.len() < limit { 0 } else { from + entries.len() - removed };
        Ok((entries.len(), removed, next))
    }
}
