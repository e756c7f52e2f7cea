//! The step pipeline's atomic operations (DESIGN §5): claim a step under a fresh fence,
//! renew the lease while it runs, and commit the next checkpoint only if the fence still holds.

use baton_core::redact::Redaction;
use baton_core::status;
use baton_core::stop::StopRequest;
use baton_proto::v1::{DeadLetter, RunEvent, RunState, StepRecord};
use prost::Message;
use redis::{ScriptInvocation, Value};

use crate::layout::{decode_run, decode_steps, head_bytes, new_steps, spec_to_store};
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

/// A granted claim.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The lease and fence.
    pub lease: Lease,
    /// The checkpoint to execute from (spec attached).
    pub state: RunState,
    /// A pending stop request (cancel or deadline) that must end the run instead of the step.
    pub stop: Option<StopRequest>,
    /// The run's latest recorded steps, oldest first, for planners that read them (at most the
    /// claim's `history` records; empty for a script run).
    pub history: Vec<StepRecord>,
    /// Events committed but not yet confirmed on Kafka (e.g. RUN_QUEUED), oldest first: the
    /// claimer publishes them before its own.
    pub unpublished: Vec<RunEvent>,
}

/// What a claim attempt got.
#[derive(Debug, Clone)]
pub enum Claim {
    /// The step is ours.
    Granted(Box<Granted>),
    /// The task is not to be executed; the reason is one of `missing`, `terminal`, `waiting`,
    /// `stale` (step already done), `ahead` (step not reached) or `leased` (someone else has it).
    Refused(String),
}

/// Adds what every checkpoint write passes (see `lua/checkpoint.lua`): the run's keys, then
/// after the caller's guard arguments the head, its retention, its event sequence number, the
/// spec (when migrating an old-layout checkpoint), the new step records and the events. Only a
/// terminal state gets a retention; a live one is kept. Events are written as `redaction` masks them.
pub(crate) fn checkpoint_write(
    invocation: &mut ScriptInvocation<'_>,
    state: &RunState,
    events: &[RunEvent],
    retention_ms: u64,
    redaction: &Redaction,
) {
    let r = &state.run_id;
    let retention = if status::is_terminal(state.status()) { retention_ms.max(1) } else { 0 };
    invocation
        .key(keys::run(r))
        .key(keys::lease(r))
        .key(keys::fence(r))
        .key(keys::events(r))
        .key(keys::steps(r))
        .key(keys::spec(r))
        .key(keys::dead_letter(r))
        .key(keys::ledger(r))
        .arg(head_bytes(state))
        .arg(status::name(state.status()))
        .arg(state.next_step)
        .arg(state.attempt)
        .arg(state.updated_at_ms)
        .arg(retention)
        .arg(state.event_seq)
        .arg(spec_to_store(state))
        .arg(state.steps.len());
    for step in new_steps(state) {
        invocation.arg(step);
    }
    for event in events {
        match redaction.redacted(event) {
            Some(masked) => invocation.arg(masked.encode_to_vec()),
            None => invocation.arg(event.encode_to_vec()),
        };
    }
}

/// What a commit got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The checkpoint and events were written and the lease dropped.
    Committed,
    /// Someone claimed the run after us: nothing was written.
    Fenced,
    /// A stop (cancel, deadline) is pending and the checkpoint would have let the run go on:
    /// nothing was written. The caller commits the stop instead (the lease still holds).
    Stopped(StopRequest),
}

impl Store {
    /// Claims step `step`, attempt `attempt` of `run_id` for `owner`, with a lease of `ttl_ms`.
    /// A run driven by a model or an agent comes with its latest `history` step records (what
    /// its planner may show; never the whole list).
    pub async fn claim(
        &self,
        run_id: &str,
        step: u32,
        attempt: u32,
        owner: &str,
        ttl_ms: u64,
        history: u32,
    ) -> Result<Claim> {
        let mut conn = self.conn().await?;
        let mut invocation = scripts().claim.prepare_invoke();
        invocation
            .key(keys::run(run_id))
            .key(keys::lease(run_id))
            .key(keys::fence(run_id))
            .key(keys::spec(run_id))
            .key(keys::steps(run_id))
            .key(keys::events(run_id))
            .arg(step)
            .arg(attempt)
            .arg(owner)
            .arg(ttl_ms)
            .arg(history);
        // The fence this claim takes must survive a failover before anything runs under it; a
        // claim the replicas did not confirm hands its lease back, so a retry can claim at once.
        let reply: Vec<Value> = match self.write_acked(&mut conn, &scripts().claim, &invocation).await {
            Err(e @ Error::NotReplicated { .. }) => {
                let _ = self.break_lease(run_id, owner).await;
                return Err(e);
            }
            other => other?,
        };
        let verdict: String = reply.first().map(redis::from_redis_value_ref).transpose()?.unwrap_or_default();
        if verdict != "ok" {
            return Ok(Claim::Refused(verdict));
        }
        let [_, fence, head, stop, spec, steps, unpublished] = reply.as_slice() else {
            return Err(Error::Corrupt { key: keys::run(run_id), reason: "claim reply has the wrong shape".into() });
        };
        let fence: u64 = redis::from_redis_value_ref(fence)?;
        let head: Vec<u8> = redis::from_redis_value_ref(head)?;
        let stop: Option<String> = redis::from_redis_value_ref(stop)?;
        let spec: Option<Vec<u8>> = redis::from_redis_value_ref(spec)?;
        let steps: Vec<Vec<u8>> = redis::from_redis_value_ref(steps)?;
        let lease = Lease { run_id: run_id.to_string(), fence, token: format!("{owner}/{fence}") };
        let state = match decode_run(&keys::run(run_id), &head, Some("running"), spec.as_deref()) {
            Ok(state) => state,
            Err(e @ Error::NewerSchema { .. }) => {
                // Nothing was written but the lease: hand it back and leave the run to a newer worker.
                self.release(&lease).await?;
                return Ok(Claim::Refused(format!("newer_schema: {e}")));
            }
            Err(e) => return Err(e),
        };
        let mut history = decode_steps(&keys::steps(run_id), &steps)?;
        // An old-layout checkpoint's inline steps are history too (and are moved at the next commit).
        history.extend(state.steps.iter().cloned());
        let entries: redis::streams::StreamRangeReply = redis::from_redis_value_ref(unpublished)?;
        let mut unpublished = entries
            .ids
            .iter()
            .map(|e| crate::runs::decode_event(&keys::events(run_id), e).map(|s| s.event))
            .collect::<Result<Vec<_>>>()?;
        unpublished.reverse();
        let stop = stop.as_deref().and_then(StopRequest::decode);
        Ok(Claim::Granted(Box::new(Granted { lease, state, stop, history, unpublished })))
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
    /// A run that ends dead-lettered is committed with its `letter`, atomically.
    pub async fn commit(
        &self,
        lease: &Lease,
        state: &RunState,
        events: &[RunEvent],
        retention_ms: u64,
        letter: Option<&DeadLetter>,
    ) -> Result<CommitOutcome> {
        self.write_under_lease(lease, state, events, retention_ms, 0, letter).await
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
        self.write_under_lease(lease, state, events, 0, ttl_ms.max(1), None).await
    }

    async fn write_under_lease(
        &self,
        lease: &Lease,
        state: &RunState,
        events: &[RunEvent],
        retention_ms: u64,
        keep_ttl_ms: u64,
        letter: Option<&DeadLetter>,
    ) -> Result<CommitOutcome> {
        let mut conn = self.conn().await?;
        let mut invocation = scripts().commit.prepare_invoke();
        let read_seq = state.event_seq.saturating_sub(events.len() as u64);
        let letter = letter.map(Message::encode_to_vec).unwrap_or_default();
        invocation.arg(&lease.token).arg(lease.fence).arg(read_seq).arg(keep_ttl_ms).arg(letter);
        checkpoint_write(&mut invocation, state, events, retention_ms, &self.redaction);
        let reply: Vec<String> = self.write_acked(&mut conn, &scripts().commit, &invocation).await?;
        let stop = reply.get(1);
        Ok(match reply.first().map(String::as_str).unwrap_or_default() {
            "ok" => CommitOutcome::Committed,
            "stopped" => match stop.and_then(|s| StopRequest::decode(s)) {
                Some(stop) => CommitOutcome::Stopped(stop),
                None => {
                    return Err(Error::Corrupt { key: keys::run(&lease.run_id), reason: format!("bad stop {stop:?}") })
                }
            },
            _ => CommitOutcome::Fenced,
        })
    }
}
