//! Listings whose runs are gone. A run's own keys expire with it (its retention); the sorted
//! sets that list runs — a tenant's runs, the active sets behind the caps, approval requests,
//! the dead-letter time index — are swept instead: a bounded page of one listing at a time is
//! checked against the runs it names, and entries that no longer hold are removed (only as
//! read: an entry re-listed meanwhile under another score stays; an entry of a run not written
//! yet stays while its submit may still write it, see `baton_core::run_id`). The listing keys themselves
//! are found by a `SCAN` spread over many calls, so a sweep costs the same whatever the size
//! of the keyspace; on a Redis Cluster the scan walks each primary in turn (a `SCAN` cursor
//! means something only to the node that gave it).

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::AsyncCommands as _;

use crate::{keys, scripts::scripts, Conn, Result, Store};

/// Where a pass of the listings scan stands: the primary (its rank on a cluster; always 0 on a
/// single Redis) and that node's `SCAN` cursor. The default starts a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingScan {
    node: usize,
    cursor: u64,
}

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
    /// One step of a `SCAN` for listing keys: where to go on (the default once a pass is
    /// complete) and the listings among the keys it looked at (up to about `count`).
    pub async fn scan_listings(&self, at: ListingScan, count: usize) -> Result<(ListingScan, Vec<String>)> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(at.cursor).arg("MATCH").arg("baton:*").arg("COUNT").arg(count).arg("TYPE").arg("zset");
        let (cursor, found, nodes): (u64, Vec<String>, usize) = match self.conn().await? {
            Conn::Single(mut conn) => {
                let (cursor, found) = scan.query_async(&mut conn).await?;
                (cursor, found, 1)
            }
            Conn::Cluster(mut conn) => {
                let primaries = primary_slots(&mut conn).await?;
                let Some(&slot) = primaries.get(at.node) else { return Ok((ListingScan::default(), Vec::new())) };
                let route =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master)));
                let reply = conn.route_command(scan, route).await?;
                let (cursor, found) = redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                (cursor, found, primaries.len())
            }
        };
        let next = match (cursor, at.node + 1 < nodes) {
            (0, true) => ListingScan { node: at.node + 1, cursor: 0 },
            (0, false) => ListingScan::default(),
            (cursor, _) => ListingScan { node: at.node, cursor },
        };
        Ok((next, found.into_iter().filter(|k| Listing::of(k).is_some()).collect()))
    }

    /// Checks `limit` entries of listing `key` from rank `from` and removes those that no longer
    /// hold; an entry of a run not found stays if the run's id was minted after `cutoff_ms`
    /// (`baton_core::run_id::creation_cutoff_ms`). Returns how many it looked at, how many it
    /// removed, and the rank to go on from (0: wrap around).
    pub async fn sweep_listing(
        &self,
        key: &str,
        from: usize,
        limit: usize,
        cutoff_ms: i64,
    ) -> Result<(usize, usize, usize)> {
        let Some(listing) = Listing::of(key) else { return Ok((0, 0, 0)) };
        let mut conn = self.conn().await?;
        let entries: Vec<(String, i64)> =
            conn.zrange_withscores(key, from as isize, (from + limit.max(1)) as isize - 1).await?;
        if entries.is_empty() {
            return Ok((0, 0, 0));
        }
        let reads = entries.iter().map(|(id, _)| redis::cmd("HGET").arg(keys::run(id)).arg("status").clone()).collect();
        let statuses: Vec<Option<String>> = self.each(reads).await?;
        let stale = |run_id: &str, status: &Option<String>| match (listing, status) {
            // Listed before it is written: a run whose submit may still be running stays.
            (_, None) => !baton_core::run_id::may_still_be_created(run_id, cutoff_ms),
            (Listing::NotEnded, Some(s)) => baton_core::status::parse(s).is_some_and(baton_core::status::is_terminal),
            _ => false,
        };
        let mut removal = redis::pipe();
        let mut removed = 0;
        for ((run_id, score), status) in entries.iter().zip(&statuses) {
            if stale(run_id, status) {
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

/// One slot of each primary of the cluster, ordered by the primary's address (so a primary keeps
/// its rank between calls while the cluster's shape holds), from `CLUSTER SLOTS`.
async fn primary_slots(conn: &mut redis::cluster_async::ClusterConnection) -> Result<Vec<u16>> {
    let reply: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut primaries: std::collections::BTreeMap<String, u16> = std::collections::BTreeMap::new();
    for range in reply {
        let redis::Value::Array(range) = range else { continue };
        let (Some(redis::Value::Int(start)), Some(redis::Value::Array(primary))) = (range.first(), range.get(2)) else {
            continue;
        };
        let host = primary.first().and_then(|h| redis::from_redis_value_ref::<String>(h).ok()).unwrap_or_default();
        let port = primary.get(1).and_then(|p| redis::from_redis_value_ref::<i64>(p).ok()).unwrap_or_default();
        primaries.entry(format!("{host}:{port}")).or_insert(*start as u16);
    }
    Ok(primaries.into_values().collect())
}
