//! Recovery of abandoned work: a due `inflight` entry is re-checked against the run's own
//! keys (an entry whose run does not exist yet is kept while its submit may still create it). If nobody holds the run, its events not yet confirmed on Kafka are re-published from
//! its Redis stream first (at least once, in order), and a dead-lettered run's letter is sent to
//! the dead-letter topic if it never got there; then a live run that is not waiting has its
//! current step re-dispatched (unless an operator paused its lane), and any other entry is
//! removed — only as it was read, so an entry a resume wrote meanwhile stays.

use baton_core::status::is_terminal;
use baton_proto::v1::RunStatus;
use baton_store::Index;
use baton_telemetry::now_ms;

use crate::Reaper;

/// Re-checks the in-flight entry of `run_id` (due `at`, as read; `None`: read it now) and
/// recovers the run if it was abandoned.
pub async fn recover(reaper: &Reaper, run_id: &str, at: Option<i64>) -> anyhow::Result<()> {
    let store = &reaper.store;
    let at = match at {
        Some(at) => at,
        None => match store.index_score(Index::Inflight, run_id).await? {
            Some(at) => at,
            None => return Ok(()),
        },
    };
    let Some(state) = store.load_run(run_id).await? else {
        let cutoff = baton_core::run_id::creation_cutoff_ms(now_ms(), reaper.config.runs.retention_ms());
        if baton_core::run_id::may_still_be_created(run_id, cutoff) {
            // The gateway writes the entry before the run: a submit slowed by a failover may
            // still create it (and answer an error its client retries, deduplicated, without
            // dispatching again). Look again after the grace.
            let next = now_ms() + reaper.config.runs.dispatch_grace_ms as i64;
            store.index_set(Index::Inflight, run_id, next).await?;
        } else {
            store.index_clear(Index::Inflight, run_id, at).await?;
        }
        return Ok(());
    };
    if let Some(left) = store.lease_remaining_ms(run_id).await? {
        // Still owned: look again when the lease would expire.
        store.index_set(Index::Inflight, run_id, now_ms() + left.max(1)).await?;
        return Ok(());
    }
    let unpublished = store.unpublished_events(run_id).await?;
    if let Some(last) = unpublished.last().map(|e| e.seq) {
        reaper.producer.send_events(&unpublished).await?;
        store.mark_published(run_id, last).await?;
        metrics::counter!(crate::metric_definitions::REPUBLISHED).increment(unpublished.len() as u64);
        tracing::info!(run_id, events = unpublished.len(), "unconfirmed events re-published");
    }
    if state.status() == RunStatus::DeadLettered {
        if let Some((letter, false)) = store.dead_letter_get(run_id).await? {
            reaper.producer.send_dead_letter(&letter).await?;
            store.dead_letter_sent(run_id).await?;
            metrics::counter!(crate::metric_definitions::DEAD_LETTERS_RESENT).increment(1);
            tracing::info!(run_id, "dead letter sent to the dead-letter topic after its worker stopped");
        }
    }
    if is_terminal(state.status()) || state.status() == RunStatus::Waiting {
        store.index_clear(Index::Inflight, run_id, at).await?;
        return Ok(());
    }
    if reaper.switches.lane_paused(&state.lane) {
        // Its task waits on the paused lane's topic; look again after the grace.
        store.index_set(Index::Inflight, run_id, now_ms() + reaper.config.runs.dispatch_grace_ms as i64).await?;
        return Ok(());
    }
    let task = baton_core::current_task(&state);
    // Look again after the dispatch grace in case this task is lost too; the claim clears it.
    store.index_set(Index::Inflight, run_id, now_ms() + reaper.config.runs.dispatch_grace_ms as i64).await?;
    // The producer routes it to a partition a live worker owns.
    reaper.producer.send_task(&task).await?;
    metrics::counter!(crate::metric_definitions::REDISPATCHED).increment(1);
    tracing::info!(run_id, step = task.step, attempt = task.attempt, "abandoned step re-dispatched");
    Ok(())
}
