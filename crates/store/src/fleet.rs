//! A sample of the fleet's shared state for gauges (the reaper exports it): in-flight runs and
//! how overdue the oldest is, timers, dead letters, live workers, switches in force, approvals
//! waiting and the oldest one's age. One pipelined round trip per index shard and one for the
//! fleet's singletons, of cardinalities and range heads: cheap at any size.

use crate::{keys, Result, Store};

/// What the indexes hold now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetSample {
    /// In-flight entries, every shard (steps leased, hand-ons unconfirmed, tasks not yet claimed).
    pub in_flight: u64,
    /// How far past due the oldest in-flight entry is, ms (0 when none is due).
    pub inflight_overdue_ms: i64,
    /// Runs waiting on a timer (sleeps, approval expiries).
    pub timers: u64,
    /// Timers due now or earlier.
    pub timers_due: u64,
    /// Dead letters not requeued or discarded.
    pub dead_letters: u64,
    /// Workers in the liveness registry.
    pub workers: u64,
    /// Operator switches in force.
    pub switches: u64,
    /// Runs listed as waiting for an approval (entries are pruned by ListApprovals and when
    /// requests are answered or expire).
    pub approvals: u64,
    /// Age of the oldest listed approval request, ms (0 when none).
    pub oldest_approval_ms: i64,
    /// The run of that request (the reaper drops it if the run no longer waits).
    pub oldest_approval_run: Option<String>,
}

impl Store {
    /// Samples the shared indexes at `now_ms`.
    pub async fn fleet_sample(&self, now_ms: i64) -> Result<FleetSample> {
        let mut conn = self.conn().await?;
        let (mut in_flight, mut oldest_due, mut timers, mut timers_due) = (0u64, None::<i64>, 0u64, 0u64);
        for shard in crate::index::shards() {
            let (count, head, shard_timers, shard_due): (u64, Vec<(String, i64)>, u64, u64) = redis::pipe()
                .zcard(keys::inflight(shard))
                .zrange_withscores(keys::inflight(shard), 0, 0)
                .zcard(keys::timers(shard))
                .zcount(keys::timers(shard), "-inf", now_ms)
                .query_async(&mut conn)
                .await?;
            in_flight += count;
            timers += shard_timers;
            timers_due += shard_due;
            if let Some((_, due)) = head.first() {
                oldest_due = Some(oldest_due.map_or(*due, |o| o.min(*due)));
            }
        }
        type Reply = (u64, u64, u64, u64, Vec<(String, i64)>);
        let (dead_letters, workers, switches, approvals, oldest_approval): Reply = redis::pipe()
            .zcard(keys::DEAD_LETTERS_BY_TIME)
            .zcard(keys::WORKERS)
            .hlen(keys::SWITCHES)
            .zcard(keys::APPROVALS_ALL)
            .zrange_withscores(keys::APPROVALS_ALL, 0, 0)
            .query_async(&mut conn)
            .await?;
        let inflight_overdue_ms = oldest_due.map_or(0, |due| (now_ms - due).max(0));
        let oldest_approval_ms = oldest_approval.first().map_or(0, |(_, at)| (now_ms - at).max(0));
        Ok(FleetSample {
            in_flight,
            inflight_overdue_ms,
            timers,
            timers_due,
            dead_letters,
            workers,
            switches,
            approvals,
            oldest_approval_ms,
            oldest_approval_run: oldest_approval.into_iter().next().map(|(run, _)| run),
        })
    }
}
