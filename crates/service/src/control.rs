//! Changing a run from outside the worker pipeline, by compare-and-set on its fence and event
//! sequence ([`Control`]): [`Control::stop`] (a cancel from the gateway, an overdue deadline
//! from the reaper) and [`Control::resume`] (a timer waking a run in the scheduler, an operator
//! requeueing a dead letter, a person answering an approval or reconciling an uncertain call —
//! which may also end it). A stop asked of a run's worker and not yet applied wins over any
//! resume: the run ends as asked instead of going on.
//!
//! What must be durable is written to Redis before a call answers; the hand-off to Kafka (the
//! run's events, its next task) is awaited at most `gateway.submit_dispatch_wait_ms` and
//! finishes in the background if the broker is slow. Until it is confirmed, the run's in-flight
//! entry stays, so the reaper re-publishes and re-dispatches whatever did not get through.

use std::time::Duration;

use baton_config::Config;
use baton_core::machine::{Next, Transition};
use baton_core::status::is_terminal;
use baton_core::stop::StopRequest;
use baton_store::{Index, Snapshot, Store, UpdateOutcome};
use baton_telemetry::now_ms;

/// How a stop went.
#[derive(Debug)]
pub enum Stopped {
    /// The run was not executing and is now ended; its final transition.
    Ended(Box<Transition>),
    /// A step is in flight: its worker will end the run.
    Requested,
    /// The run changed since `snapshot` was read (claimed, updated or ended): read it again.
    Changed,
}

/// Stops and resumes runs nobody is executing. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    store: Store,
    producer: baton_bus::Producer,
    dispatch_grace_ms: u64,
    retention_ms: u64,
    handoff_wait: Duration,
}

impl Control {
    /// A controller writing to `store` and handing on through `producer`, timed by `config`.
    pub fn new(config: &Config, store: Store, producer: baton_bus::Producer) -> Self {
        Self {
            store,
            producer,
            dispatch_grace_ms: config.runs.dispatch_grace_ms,
            retention_ms: config.runs.retention_ms(),
            handoff_wait: Duration::from_millis(config.gateway.submit_dispatch_wait_ms),
        }
    }

    /// Stops the non-terminal run read as `snapshot` as `request` asks: at once if nobody
    /// executes it, else by asking its worker (whose next commit, renewal or claim applies it).
    pub async fn stop(&self, snapshot: &Snapshot, request: &StopRequest) -> baton_store::Result<Stopped> {
        let run_id = &snapshot.state.run_id;
        if snapshot.leased {
            let verdict = self.store.request_stop(run_id, request).await?;
            return Ok(if verdict == "ok" { Stopped::Requested } else { Stopped::Changed });
        }
        let t = request.apply(snapshot.state.clone(), now_ms());
        match self.commit(snapshot, &t, &[]).await? {
            Some(t) => Ok(Stopped::Ended(Box::new(t))),
            None => Ok(Stopped::Changed),
        }
    }

    /// Commits `t` — a transition of the unleased run read as `snapshot` that makes it runnable
    /// again, keeps it waiting, or ends it — and hands it on; `extra` index entries are written
    /// with its in-flight entry, first. If a stop is pending, the run ends as the stop asks
    /// instead of `t`. Returns what was committed, or `None` (nothing written) if the run
    /// changed since it was read.
    pub async fn resume(
        &self,
        snapshot: &Snapshot,
        t: &Transition,
        extra: &[(Index, i64)],
    ) -> baton_store::Result<Option<Transition>> {
        match &snapshot.stop {
            Some(stop) if !is_terminal(t.state.status()) => {
                tracing::info!(run_id = %snapshot.state.run_id, code = %stop.code, "a pending stop ends the run instead");
                self.commit(snapshot, &stop.apply(snapshot.state.clone(), now_ms()), &[]).await
            }
            _ => self.commit(snapshot, t, extra).await,
        }
    }

    /// Writes the in-flight entry (and `extra`), commits `t` by compare-and-set, then hands on.
    async fn commit(
        &self,
        snapshot: &Snapshot,
        t: &Transition,
        extra: &[(Index, i64)],
    ) -> baton_store::Result<Option<Transition>> {
        let run_id = &snapshot.state.run_id;
        let due = now_ms() + self.dispatch_grace_ms as i64;
        let mut entries = vec![(Index::Inflight, due)];
        entries.extend_from_slice(extra);
        self.store.index_set_all(run_id, &entries).await?;
        match self.store.update(snapshot, &t.state, &t.events, self.retention_ms).await? {
            UpdateOutcome::Updated => {}
            UpdateOutcome::Leased | UpdateOutcome::Conflict | UpdateOutcome::Stopped => return Ok(None),
        }
        if is_terminal(t.state.status()) {
            crate::metric_definitions::count_finished(&t.state);
        }
        let before = &snapshot.state;
        let ended =
            [(Index::Inflight, due), (Index::Deadlines, before.deadline_at_ms), (Index::Timers, before.wake_at_ms)];
        let handoff = tokio::spawn(hand_on(self.clone(), t.clone(), ended));
        if tokio::time::timeout(self.handoff_wait, handoff).await.is_err() {
            tracing::warn!(run_id = %run_id, wait_ms = self.handoff_wait.as_millis() as u64,
                "broker slow to take the hand-off; answered anyway, it completes in the background");
        }
        Ok(Some(t.clone()))
    }
}

/// After `t` was committed: its events reach Kafka, then its next task; an ended run's index
/// entries (`ended`: the ones written for it, if nobody wrote fresher ones) are cleared once its
/// events are confirmed. A failure leaves the in-flight entry for the reaper.
async fn hand_on(control: Control, t: Transition, ended: [(Index, i64); 3]) {
    let (store, producer) = (&control.store, &control.producer);
    let run_id = &t.state.run_id;
    let published = publish(store, producer, &t).await;
    if is_terminal(t.state.status()) {
        if let Err(e) = store.active_ended(&t.state.tenant, &t.state.lane, run_id).await {
            tracing::debug!(run_id = %run_id, error = %e, "cannot take the ended run off the active sets (swept later)");
        }
    }
    if published && is_terminal(t.state.status()) {
        if let Err(e) = store.index_clear_all(run_id, &ended).await {
            tracing::warn!(run_id = %run_id, error = %e, "cannot clear indexes of an ended run (the reaper will)");
        }
    }
    if let Next::Advance { step, attempt } = t.next {
        // The in-flight entry stays until a worker claims the run (the reaper re-dispatches it
        // after the grace otherwise).
        if let Err(e) = producer.send_task(&baton_core::advance_task(&t.state, step, attempt, 0)).await {
            tracing::warn!(run_id = %run_id, error = %e, "task not dispatched; the reaper will retry");
        }
    }
}

/// Produces every event of the run not yet confirmed on Kafka — the transition's, and any
/// before it (a queued run's RUN_QUEUED) — and records them as published. False if that failed:
/// the caller leaves the run's in-flight entry for the reaper to re-publish them.
async fn publish(store: &Store, producer: &baton_bus::Producer, t: &Transition) -> bool {
    let run_id = &t.state.run_id;
    let events = match store.unpublished_events(run_id).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(run_id = %run_id, error = %e, "cannot read unpublished events; the reaper will publish them");
            return false;
        }
    };
    if let Err(e) = producer.send_events(&events).await {
        tracing::warn!(run_id = %run_id, error = %e, "events not delivered to Kafka; the reaper will re-publish");
        return false;
    }
    match store.mark_published(run_id, t.state.event_seq).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(run_id = %run_id, error = %e, "cannot record published events");
            false
        }
    }
}
