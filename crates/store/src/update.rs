//! Changing runs nobody is executing (cancel, timer wake, deadline, approval, reconciliation,
//! requeue) by compare-and-set on the fence and the event sequence read, and asking the worker
//! that *is* executing one to stop it.

use baton_core::stop::StopRequest;
use baton_proto::v1::{RunEvent, RunState};
use redis::Value;

use crate::layout::decode_run;
use crate::lease::checkpoint_write;
use crate::{keys, scripts::scripts, Result, Store};

/// A run read for a compare-and-set.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The checkpoint, with its current status.
    pub state: RunState,
    /// The fence counter at the time of the read.
    pub fence: u64,
    /// Whether a worker holds the run's lease.
    pub leased: bool,
    /// The checkpoint's last event sequence number at the time of the read.
    pub seq: u64,
    /// A stop (cancel, deadline) asked of the worker that held the run and not yet applied:
    /// whatever changes the run next must end it so.
    pub stop: Option<StopRequest>,
}

/// What a compare-and-set got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written.
    Updated,
    /// A worker holds the lease: ask it instead ([`Store::request_stop`]).
    Leased,
    /// The run changed since the read: read again.
    Conflict,
    /// A stop is pending and the write would have let the run go on: read again and commit
    /// the stop ([`Snapshot::stop`]) instead.
    Stopped,
}

impl Store {
    /// Reads a run's checkpoint, fence and lease state atomically; `None` if unknown.
    pub async fn read_for_update(&self, run_id: &str) -> Result<Option<Snapshot>> {
        let mut conn = self.conn().await?;
        let reply: Vec<Value> = scripts()
            .read
            .key(keys::run(run_id))
            .key(keys::lease(run_id))
            .key(keys::fence(run_id))
            .key(keys::spec(run_id))
            .invoke_async(&mut conn)
            .await?;
        let [fence, head, status_name, leased, spec, seq, stop] = reply.as_slice() else {
            return Ok(None);
        };
        let fence: u64 = redis::from_redis_value_ref(fence)?;
        let head: Vec<u8> = redis::from_redis_value_ref(head)?;
        let status_name: String = redis::from_redis_value_ref(status_name)?;
        let leased: i64 = redis::from_redis_value_ref(leased)?;
        let spec: Option<Vec<u8>> = redis::from_redis_value_ref(spec)?;
        let seq: u64 = redis::from_redis_value_ref(seq)?;
        let stop: Option<String> = redis::from_redis_value_ref(stop)?;
        let state = decode_run(&keys::run(run_id), &head, Some(&status_name), spec.as_deref())?;
        let stop = stop.as_deref().and_then(StopRequest::decode);
        Ok(Some(Snapshot { state, fence, leased: leased == 1, seq, stop }))
    }

    /// Writes `state` and appends `events` if the run is unleased and unchanged since `read`
    /// (same fence, same event sequence) and no stop is pending unless `state` is terminal.
    /// A terminal state is kept for `retention_ms` more; a live one is kept indefinitely.
    pub async fn update(
        &self,
        read: &Snapshot,
        state: &RunState,
        events: &[RunEvent],
        retention_ms: u64,
    ) -> Result<UpdateOutcome> {
        let mut conn = self.conn().await?;
        let mut invocation = scripts().update.prepare_invoke();
        invocation.arg(read.fence).arg(read.seq);
        checkpoint_write(&mut invocation, state, events, retention_ms, &self.redaction);
        let verdict: String = self.write_acked(&mut conn, &scripts().update, &invocation).await?;
        Ok(match verdict.as_str() {
            "ok" => UpdateOutcome::Updated,
            "leased" => UpdateOutcome::Leased,
            "stopped" => UpdateOutcome::Stopped,
            _ => UpdateOutcome::Conflict,
        })
    }

    /// The run's pending stop request, if any (read by a running step between renewals).
    pub async fn stop_requested(&self, run_id: &str) -> Result<Option<StopRequest>> {
        let mut conn = self.conn().await?;
        let stop: Option<String> = redis::cmd("HGET").arg(keys::run(run_id)).arg("stop").query_async(&mut conn).await?;
        Ok(stop.as_deref().and_then(StopRequest::decode))
    }

    /// Records a stop request for the worker executing the run (its heartbeat, its next
    /// commit and any later claim read it). Returns `ok`, or `missing`, `terminal` or
    /// `unleased` (nobody executes it: stop it by compare-and-set).
    pub async fn request_stop(&self, run_id: &str, request: &StopRequest) -> Result<String> {
        let mut conn = self.conn().await?;
        let mut invocation = scripts().request_stop.prepare_invoke();
        invocation.key(keys::run(run_id)).key(keys::lease(run_id)).arg(request.encode());
        // An accepted stop must not be lost to a failover.
        self.write_acked(&mut conn, &scripts().request_stop, &invocation).await
    }
}
