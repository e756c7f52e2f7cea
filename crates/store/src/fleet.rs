//! A sample of the fleet's shared state for gauges (the reaper exports it): in-flight runs and
//! how overdue the oldest is, timers, dead letters, live workers, switches in force, approvals
//! waiting and the oldest one's age. One
//! pipelined round trip of cardinalities and range heads, cheap at any size.

use crate::{keys, Result, Store};

/// What the indexes hold now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetSample {
    /// Entries of `baton:inflight` (steps leased, hand-ons unconfirmed, tasks not yet claimed).
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
        type Reply = (u64, Vec<(String, i64)>, u64, u64, u64, u64, u64, u64, Vec<(String, i64)>);
        let (in_flight, oldest, timers, timers_due, dead_letters, workers, switches, approvals, oldest_approval): Reply =
            redis::pipe()
            .zcard(keys::INFLIGHT)
            .zrange_withscores(keys::INFLIGHT, 0, 0)
            .zcard(keys::TIMERS)
            .zcount(keys::TIMERS, "-inf", now_ms)
            .zcard(keys::DEAD_LETTERS_BY_TIME)
            .zcard(keys::WORKERS)
            .hlen(keys::SWITCHES)
            .zcard(keys::APPROVALS_ALL)
            .zrange_withscores(keys::APPROVALS_ALL, 0, 0)
            .query_async(&mut conn)
            .await?;
        let inflight_overdue_ms = oldest.first().map_or(0, |(_, due)| (now_ms - due).max(0));
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
