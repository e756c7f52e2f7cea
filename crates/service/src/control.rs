//! Changing a run from outside the worker pipeline, by compare-and-set on its fence:
//! [`stop_run`] (a cancel from the gateway, an overdue deadline from the reaper) and
//! [`resume_run`] (a timer waking a run in the scheduler, an operator requeueing a dead letter,
//! a person answering an approval or reconciling an uncertain call — which may also end it).

use baton_core::machine::{Next, Transition};
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

/// Stops the non-terminal run read as `snapshot` as `request` asks. An ended run's final events
/// are produced to Kafka; an in-flight entry written first lets the reaper re-publish them if
/// that fails, and the run is dropped from every index once they are confirmed.
pub async fn stop_run(
    store: &Store,
    producer: &baton_bus::Producer,
    snapshot: &Snapshot,
    request: &StopRequest,
    retention_ms: u64,
) -> baton_store::Result<Stopped> {
    let run_id = &snapshot.state.run_id;
    if snapshot.leased {
        let verdict = store.request_stop(run_id, request).await?;
        return Ok(if verdict == "ok" { Stopped::Requested } else { Stopped::Changed });
    }
    let t = request.apply(snapshot.state.clone(), now_ms());
    store.index_set(Index::Inflight, run_id, now_ms() + 10_000).await?;
    match store.update(snapshot, &t.state, &t.events, retention_ms).await? {
        UpdateOutcome::Updated => {}
        UpdateOutcome::Leased | UpdateOutcome::Conflict => return Ok(Stopped::Changed),
    }
    crate::metric_definitions::count_finished(&t.state);
    if publish(store, producer, &t).await {
        if let Err(e) = store.index_drop_all(run_id).await {
            tracing::warn!(run_id = %run_id, error = %e, "cannot clear indexes of a stopped run");
        }
    }
    Ok(Stopped::Ended(Box::new(t)))
}

/// Commits `t` — a transition of the unleased run read as `snapshot` that makes it runnable
/// again, keeps it waiting, or ends it — and dispatches its next step. The in-flight entry (and
/// any `extra` index entries) is written first and stays until a worker claims the run, so the
/// reaper re-dispatches if anything after the commit fails. An ended run is kept for
/// `retention_ms` and dropped from every index once its events are on Kafka. Returns false,
/// writing nothing, if the run changed since it was read.
pub async fn resume_run(
    store: &Store,
    producer: &baton_bus::Producer,
    snapshot: &Snapshot,
    t: &Transition,
    dispatch_grace_ms: u64,
    retention_ms: u64,
    extra: &[(Index, i64)],
) -> baton_store::Result<bool> {
    let run_id = &snapshot.state.run_id;
    let due = now_ms() + dispatch_grace_ms as i64;
    let mut entries = vec![(Index::Inflight, due)];
    entries.extend_from_slice(extra);
    store.index_set_all(run_id, &entries).await?;
    match store.update(snapshot, &t.state, &t.events, retention_ms).await? {
        UpdateOutcome::Updated => {}
        UpdateOutcome::Leased | UpdateOutcome::Conflict => return Ok(false),
    }
    let ended = baton_core::status::is_terminal(t.state.status());
    if ended {
        crate::metric_definitions::count_finished(&t.state);
    }
    if publish(store, producer, t).await && ended {
        if let Err(e) = store.index_drop_all(run_id).await {
            tracing::warn!(run_id = %run_id, error = %e, "cannot clear indexes of an ended run");
        }
    }
    if let Next::Advance { step, attempt } = t.next {
        // The in-flight entry stays until a worker claims the run (the reaper re-dispatches it
        // after the grace otherwise).
        if let Err(e) = producer.send_task(&baton_core::advance_task(&t.state, step, attempt, 0)).await {
            tracing::warn!(run_id = %run_id, error = %e, "task not dispatched; the reaper will retry");
        }
    }
    Ok(true)
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
