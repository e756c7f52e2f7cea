//! The step pipeline's atomic operations (DESIGN §5): claim a step under a fresh fence,
//! renew the lease while it runs, and commit the next checkpoint only if the fence still holds.

use baton_core::status;
use baton_core::stop::StopRequest;
use baton_proto::v1::{RunEvent, RunState};
use prost::Message as _;
use redis::{ScriptInvocation, Value};

use crate::runs::decode_state;
use crate::{keys, scripts::scripts, Error, Result, Store};

/// Proof of a claim: the lease token and the fence it was granted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Run the lease is on.
    pub run_id: String,
    /// Fencing token: strictly greater than every earlier claim's.
    pub fence: u64,
    /// Value of the lease key: `<owner>/<fence>`.
    pub token: String,
}

/// What a claim attempt got.
#[derive(Debug, Clone)]
pub enum Claim {
    /// The step is ours: its lease, the checkpoint to execute from, and a pending stop request
    /// (cancel or deadline) that must end the run instead of executing the step.
    Granted(Lease, Box<RunState>, Option<StopRequest>),
    /// The task is not to be executed; the reason is one of `missing`, `terminal`, `waiting`,
    /// `stale` (step already done), `ahead` (step not reached) or `leased` (someone else has it).
    Refused(String),
}

/// Adds what every checkpoint write passes (see `lua/checkpoint.lua`): the run's keys, then
/// after the caller's guard arguments the checkpoint, its retention, its event sequence number
/// and the events. Only a terminal state gets a retention; a live one is kept.
pub(crate) fn checkpoint_write(
    invocation: &mut ScriptInvocation<'_>,
    state: &RunState,
    events: &[RunEvent],
    retention_ms: u64,
) {
    let r = &state.run_id;
    let retention = if status::is_terminal(state.status()) { retention_ms.max(1) } else { 0 };
    invocation
        .key(keys::run(r))
        .key(keys::lease(r))
        .key(keys::fence(r))
        .key(keys::events(r))
        .arg(state.encode_to_vec())
        .arg(status::name(state.status()))
        .arg(state.next_step)
        .arg(state.attempt)
        .arg(state.updated_at_ms)
        .arg(retention)
        .arg(state.event_seq);
    for event in events {
        invocation.arg(event.encode_to_vec());
    }
}

/// What a commit got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The checkpoint and events were written and the lease dropped.
    Committed,
    /// Someone claimed the run after us: nothing was written.
    Fenced,
}

impl Store {
    /// Claims step `step`, attempt `attempt` of `run_id` for `owner`, with a lease of `ttl_ms`.
    pub async fn claim(&self, run_id: &str, step: u32, attempt: u32, owner: &str, ttl_ms: u64) -> Result<Claim> {
        let mut conn = self.conn().await?;
        let reply: Vec<Value> = scripts()
            .claim
            .key(keys::run(run_id))
            .key(keys::lease(run_id))
            .key(keys::fence(run_id))
            .arg(step)
            .arg(attempt)
            .arg(owner)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        let verdict: String = reply.first().map(redis::from_redis_value_ref).transpose()?.unwrap_or_default();
        if verdict != "ok" {
            return Ok(Claim::Refused(verdict));
        }
        let stop: Option<String> = reply.get(3).map(redis::from_redis_value_ref).transpose()?.flatten();
        let (Some(fence), Some(state)) = (reply.get(1), reply.get(2)) else {
            return Err(Error::Corrupt { key: keys::run(run_id), reason: "claim reply too short".into() });
        };
        let fence: u64 = redis::from_redis_value_ref(fence)?;
        let bytes: Vec<u8> = redis::from_redis_value_ref(state)?;
        let mut state = decode_state(&keys::run(run_id), &bytes, None)?;
        if state.status() == baton_proto::v1::RunStatus::Queued {
            state.status = baton_proto::v1::RunStatus::Running as i32;
        }
        let lease = Lease { run_id: run_id.to_string(), fence, token: format!("{owner}/{fence}") };
        Ok(Claim::Granted(lease, Box::new(state), stop.as_deref().and_then(StopRequest::decode)))
    }

    /// Extends the lease by `ttl_ms` if it is still ours (false: it was lost), and reports a
    /// pending stop request for the run.
    pub async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<(bool, Option<StopRequest>)> {
        let mut conn = self.conn().await?;
        let (held, stop): (i64, Option<String>) = scripts()
            .renew
            .key(keys::lease(&lease.run_id))
            .key(keys::run(&lease.run_id))
            .arg(&lease.token)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok((held == 1, stop.as_deref().and_then(StopRequest::decode)))
    }

    /// Hands the lease back so another worker can claim the step at once. True if it was ours.
    pub async fn release(&self, lease: &Lease) -> Result<bool> {
        let mut conn = self.conn().await?;
        let released: i64 =
            scripts().release.key(keys::lease(&lease.run_id)).arg(&lease.token).invoke_async(&mut conn).await?;
        Ok(released == 1)
    }

    /// Writes `state` and appends `events` (the events `state` gained since the last commit)
    /// if no one claimed the run since `lease` was granted and nothing was committed since the
    /// state was read, then drops the lease. A terminal state is kept for `retention_ms` more.
    pub async fn commit(
        &self,
        lease: &Lease,
        state: &RunState,
        events: &[RunEvent],
        retention_ms: u64,
    ) -> Result<CommitOutcome> {
        self.write_under_lease(lease, state, events, retention_ms, 0).await
    }

    /// Like [`Store::commit`], but keeps the lease (renewed to `ttl_ms`): the worker goes on
    /// with the run. Used to make a proposal durable before its tool runs.
    pub async fn checkpoint(
        &self,
        lease: &Lease,
        state: &RunState,
        events: &[RunEvent],
        ttl_ms: u64,
    ) -> Result<CommitOutcome> {
        self.write_under_lease(lease, state, events, 0, ttl_ms.max(1)).await
    }

    async fn write_under_lease(
        &self,
        lease: &Lease,
        state: &RunState,
        events: &[RunEvent],
        retention_ms: u64,
        keep_ttl_ms: u64,
    ) -> Result<CommitOutcome> {
        let mut conn = self.conn().await?;
        let mut invocation = scripts().commit.prepare_invoke();
        let read_seq = state.event_seq.saturating_sub(events.len() as u64);
        invocation.arg(&lease.token).arg(lease.fence).arg(read_seq).arg(keep_ttl_ms);
        checkpoint_write(&mut invocation, state, events, retention_ms);
        let verdict: String = invocation.invoke_async(&mut conn).await?;
        Ok(if verdict == "ok" { CommitOutcome::Committed } else { CommitOutcome::Fenced })
    }
}
