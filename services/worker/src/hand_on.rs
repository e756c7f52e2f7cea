//! Hand-on at the end of a slice (DESIGN §5 step 5): the slice's events reach Kafka (awaited
//! here, once, and marked published), then what the transition asks for next is produced — a
//! task, a retry on its tier topic, a dead letter's topic record (the letter itself was
//! committed with the run's end), or nothing. A task or retry moves the run's in-flight entry to
//! when the reaper should re-dispatch it if nobody claims it; a waiting or finished run's entry
//! is cleared. If the events or the dead letter could not be confirmed, the entry stays: the
//! reaper re-publishes them from Redis.

use baton_bus::Pending;
use baton_core::machine::{Next, Transition};
use baton_core::retry::tier_label;
use baton_proto::v1::{DeadLetter, RunState};
use baton_store::Index;
use baton_telemetry::now_ms;

use crate::metric_definitions as m;
use crate::pipeline::{phase, Origin};
use crate::Worker;

/// The dead letter `t` commits with the run's end, if it dead-letters the run; `origin` is the
/// task record whose attempt failed last.
pub fn dead_letter(t: &Transition, origin: &Origin) -> Option<DeadLetter> {
    let Next::DeadLetter { step, tool, attempts, error } = &t.next else { return None };
    Some(DeadLetter {
        run_id: t.state.run_id.clone(),
        tenant: t.state.tenant.clone(),
        lane: t.state.lane.clone(),
        step: *step,
        tool: tool.clone(),
        attempts: *attempts,
        error: error.clone(),
        origin_topic: origin.topic.clone(),
        origin_partition: origin.partition,
        origin_offset: origin.offset,
        dead_at_ms: t.state.updated_at_ms,
    })
}

/// Hands the run on after `t` was committed (with `letter`, if it dead-lettered the run);
/// `events` are the slice's earlier events not yet confirmed. Returns the slice outcome label.
pub async fn hand_on(
    worker: &Worker,
    t: &Transition,
    mut events: Pending,
    due: i64,
    letter: Option<DeadLetter>,
) -> &'static str {
    let run_id = &t.state.run_id;
    if let Err(e) = worker.producer.enqueue_events(&t.events, &mut events).await {
        tracing::warn!(error = %e, "events not handed to Kafka (the reaper re-publishes them from Redis)");
    }
    let published = publish(worker, &t.state, events).await;
    // A task or retry keeps the run in the in-flight index until a worker claims it, so one that
    // is never consumed is re-dispatched by the reaper; the claim moves the entry to its lease.
    let grace = worker.config.runs.dispatch_grace_ms as i64;
    let redispatch_at = match &t.next {
        Next::Advance { .. } => Some(now_ms() + grace),
        Next::Retry { not_before_ms, .. } => Some(not_before_ms + grace),
        _ => None,
    };
    if let Some(at) = redispatch_at {
        if let Err(e) = worker.store.index_set(Index::Inflight, run_id, at).await {
            tracing::warn!(error = %e, "cannot index the hand-on; the lease's entry covers it");
        }
    }
    let producing = std::time::Instant::now();
    let task = |step, attempt, not_before_ms| baton_core::advance_task(&t.state, step, attempt, not_before_ms);
    let (sent, label) = match &t.next {
        Next::Advance { step, attempt } => (worker.producer.send_task(&task(*step, *attempt, 0)).await, "advanced"),
        Next::Retry { step, attempt, delay_ms, not_before_ms } => {
            // The delay is the tier's own: it names the topic.
            let tier = tier_label(*delay_ms);
            let retry = task(*step, *attempt, *not_before_ms);
            metrics::counter!(m::RETRIES, "tier" => tier.clone()).increment(1);
            (worker.producer.send_retry(&retry, &tier).await, "retried")
        }
        Next::Wait { .. } => (Ok(()), "waiting"),
        Next::Hold => (Ok(()), "held"),
        Next::DeadLetter { .. } => {
            metrics::counter!(m::DEAD_LETTERS).increment(1);
            match &letter {
                Some(letter) => (send_letter(worker, letter).await, "dead_lettered"),
                None => (Ok(()), "dead_lettered"),
            }
        }
        Next::Nothing => (Ok(()), "finished"),
        // Never committed: the pipeline runs an accepted call before it commits.
        Next::Execute => (Ok(()), "executed"),
    };
    phase("produce_task", producing);
    if let Err(e) = sent {
        tracing::warn!(error = %e, "hand-on not delivered; the reaper will re-dispatch");
        return "handoff_failed";
    }
    let ended = [(Index::Inflight, due), (Index::Deadlines, t.state.deadline_at_ms)];
    let cleared = match t.next {
        Next::DeadLetter { .. } | Next::Nothing if published => worker.store.index_clear_all(run_id, &ended).await,
        // Not all events confirmed: the in-flight entry stays for the reaper to re-publish them.
        _ if !published => Ok(()),
        Next::Wait { .. } | Next::Hold => worker.store.index_clear(Index::Inflight, run_id, due).await.map(|_| ()),
        // A task or retry: its entry was moved above and stays until the claim.
        _ => Ok(()),
    };
    if let Err(e) = cleared {
        tracing::warn!(error = %e, "cannot clear index entries");
    }
    if matches!(t.next, Next::DeadLetter { .. } | Next::Nothing) {
        if let Err(e) = worker.store.active_ended(&t.state.tenant, &t.state.lane, run_id).await {
            tracing::debug!(error = %e, "cannot take the ended run off the active sets (the reaper's sweep will)");
        }
    }
    label
}

/// Produces the dead letter's topic record and marks the letter sent; an error leaves it unsent
/// (and the run's in-flight entry in place) for the reaper.
async fn send_letter(worker: &Worker, letter: &DeadLetter) -> baton_bus::Result<()> {
    worker.producer.send_dead_letter(letter).await?;
    if let Err(e) = worker.store.dead_letter_sent(&letter.run_id).await {
        tracing::warn!(error = %e, "dead letter delivered but not marked sent (the reaper may send it again)");
    }
    Ok(())
}

/// Awaits the delivery of the slice's events and records the run's events up to its latest as
/// published. False if a delivery failed or could not be recorded.
pub async fn publish(worker: &Worker, state: &RunState, events: Pending) -> bool {
    let waiting = std::time::Instant::now();
    let delivered = worker.producer.delivered(events).await;
    phase("produce_events", waiting);
    if let Err(e) = delivered {
        tracing::warn!(error = %e, "events not delivered to Kafka (the reaper re-publishes them from Redis)");
        return false;
    }
    match worker.store.mark_published(&state.run_id, state.event_seq).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record published events");
            false
        }
    }
}
