//! Hand-on after a commit (DESIGN §5 step 5): produce the step's events (a committed
//! proposal's first), then what the transition
//! asks for next — a task, a retry on its tier topic, a dead letter, or nothing — and finally
//! clear the in-flight entry if it is still ours.

use baton_core::machine::{Next, Transition};
use baton_core::retry::tier_label;
use baton_proto::v1::{DeadLetter, RunEvent};
use baton_store::Index;
use baton_telemetry::now_ms;

use crate::pipeline::Origin;
use crate::Worker;

/// Hands the run on after `t` was committed; `proposed` are the events of the proposal
/// committed earlier in the step. Returns the step outcome label for metrics.
pub async fn hand_on(
    worker: &Worker,
    t: &Transition,
    proposed: &[RunEvent],
    due: i64,
    origin: &Origin,
) -> &'static str {
    let run_id = &t.state.run_id;
    let producing = std::time::Instant::now();
    let events: Vec<RunEvent> = proposed.iter().chain(&t.events).cloned().collect();
    if let Err(e) = worker.producer.send_events(&events).await {
        tracing::warn!(error = %e, "events not delivered to Kafka (they are in the Redis history)");
    }
    crate::pipeline::phase("produce_events", producing);
    let producing = std::time::Instant::now();
    let task = |step, attempt, not_before_ms| baton_core::advance_task(&t.state, step, attempt, not_before_ms);
    let (sent, label) = match &t.next {
        Next::Advance { step, attempt } => (worker.producer.send_task(&task(*step, *attempt, 0)).await, "advanced"),
        Next::Retry { step, attempt, delay_ms, not_before_ms } => {
            // The delay is the tier's own: it names the topic.
            let tier = tier_label(*delay_ms);
            let retry = task(*step, *attempt, *not_before_ms);
            metrics::counter!(crate::metric_definitions::RETRIES, "tier" => tier.clone()).increment(1);
            (worker.producer.send_retry(&retry, &tier).await, "retried")
        }
        Next::Wait { .. } => (Ok(()), "waiting"),
        Next::DeadLetter { step, tool, attempts, error } => {
            let letter = DeadLetter {
                run_id: run_id.clone(),
                tenant: t.state.tenant.clone(),
                lane: t.state.lane.clone(),
                step: *step,
                tool: tool.clone(),
                attempts: *attempts,
                error: error.clone(),
                origin_topic: origin.topic.clone(),
                origin_partition: origin.partition,
                origin_offset: origin.offset,
                dead_at_ms: now_ms(),
            };
            if let Err(e) = worker.store.dead_letter_put(&letter).await {
                tracing::warn!(error = %e, "dead letter not indexed in Redis");
            }
            metrics::counter!(crate::metric_definitions::DEAD_LETTERS).increment(1);
            (worker.producer.send_dead_letter(&letter).await, "dead_lettered")
        }
        Next::Nothing => (Ok(()), "finished"),
        // Never committed: the pipeline runs an accepted call before it commits.
        Next::Execute => (Ok(()), "executed"),
    };
    crate::pipeline::phase("produce_task", producing);
    if let Err(e) = sent {
        tracing::warn!(error = %e, "hand-on not delivered; the reaper will re-dispatch");
        return "handoff_failed";
    }
    let cleared = match t.next {
        Next::DeadLetter { .. } | Next::Nothing => worker.store.index_drop_all(run_id).await,
        _ => worker.store.index_clear(Index::Inflight, run_id, due).await.map(|_| ()),
    };
    if let Err(e) = cleared {
        tracing::warn!(error = %e, "cannot clear index entries");
    }
    label
}
