//! The consumer loop: take a permit, receive a task, claim it, store its offset (the lease now
//! owns the work), and hand the claimed step to [`crate::pipeline`] on its own task.

use std::sync::Arc;
use std::time::Duration;

use baton_bus::rdkafka::consumer::{CommitMode, Consumer as _};
use baton_bus::rdkafka::Message as _;
use baton_proto::v1::Task;
use baton_store::{Claim, Index};
use baton_telemetry::shutdown::bounded_drain;
use baton_telemetry::{now_ms, Readiness};
use prost::Message as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{pipeline, Worker};

/// Consumes the lane's tasks until `shutdown`, then drains in-flight steps.
pub async fn consume(worker: Arc<Worker>, readiness: Readiness, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = &worker.config;
    let topics = worker.producer.topics().clone();
    let topic = topics.tasks(&cfg.worker.lane);
    let consumer = baton_bus::consumer(&cfg.kafka, &topics.worker_group(&cfg.worker.lane), &worker.id, &[&topic])?;
    let permits = Arc::new(Semaphore::new(cfg.worker.concurrency));
    let steps = TaskTracker::new();
    // Fired only when the drain grace runs out: in-flight steps stop and are handed back.
    let abandon = CancellationToken::new();
    let orphan_after = Duration::from_millis(u64::from(cfg.kafka.session_timeout_ms) * 3 / 2);
    let mut owners = crate::owners::Owners::new(&cfg.worker.lane, &topic, &worker.id, orphan_after);
    loop {
        readiness.tick();
        owners.check(&worker.store, &consumer).await;
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p?,
            _ = shutdown.cancelled() => break,
        };
        let message = tokio::select! {
            m = consumer.recv() => m,
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                continue;
            }
        };
        let task = match message.payload().map(Task::decode) {
            Some(Ok(task)) => task,
            other => {
                tracing::error!(topic = %topic, partition = message.partition(), offset = message.offset(),
                    error = ?other.map(|r| r.err()), "undecodable task skipped");
                metrics::counter!(crate::metric_definitions::TASKS_UNDECODABLE).increment(1);
                let _ = consumer.store_offset_from_message(&message);
                continue;
            }
        };
        let traceparent = baton_bus::traceparent_of(&message);
        if let Some(produced_ms) = message.timestamp().to_millis() {
            // Time the task spent in Kafka: queueing behind other tasks plus fetch latency.
            metrics::histogram!(crate::metric_definitions::TASK_WAIT)
                .record((now_ms() - produced_ms).max(0) as f64 / 1000.0);
        }
        tracing::debug!(run_id = %task.run_id, step = task.step, partition = message.partition(), offset = message.offset(), "task received");
        let claiming = std::time::Instant::now();
        let claim = match claim(&worker, &task).await {
            Ok(c) => c,
            Err(e) => {
                // Redis is unavailable: do not store the offset; seek back so the task is re-read.
                tracing::warn!(run_id = %task.run_id, error = %e, "claim failed, will retry the task");
                let _ = consumer.seek(
                    message.topic(),
                    message.partition(),
                    baton_bus::rdkafka::Offset::Offset(message.offset()),
                    Duration::from_secs(5),
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        pipeline::phase("claim", claiming);
        if let Err(e) = consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %e, "cannot store offset");
        }
        if let Some(claimed) = claim {
            let worker = worker.clone();
            let abandon = abandon.clone();
            let origin = pipeline::Origin {
                topic: message.topic().to_string(),
                partition: message.partition(),
                offset: message.offset(),
                traceparent,
            };
            steps.spawn(async move {
                pipeline::run_step(&worker, claimed, origin, abandon).await;
                drop(permit);
            });
        }
    }
    readiness.set_draining();
    steps.close();
    tracing::info!(in_flight = steps.len(), "draining worker");
    let grace = Duration::from_millis(worker.config.worker.drain_grace_ms);
    if !bounded_drain("in-flight steps", grace, steps.wait()).await {
        // Stop the remaining steps; each hands its run back to the lane.
        abandon.cancel();
        steps.wait().await;
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(())
        | Err(baton_bus::rdkafka::error::KafkaError::ConsumerCommit(
            baton_bus::rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => {}
        Err(e) => tracing::warn!(error = %e, "final offset commit failed"),
    }
    Ok(())
}

/// Claims the task's step. `Ok(None)` means the task is a duplicate or not to run now.
async fn claim(worker: &Worker, task: &Task) -> baton_store::Result<Option<pipeline::Claimed>> {
    let ttl = worker.config.worker.lease_ttl_ms;
    let claim = worker.store.claim(&task.run_id, task.step, task.attempt, &worker.id, ttl).await?;
    let label = match &claim {
        Claim::Granted(..) => "granted",
        Claim::Refused(reason) => reason.as_str(),
    };
    metrics::counter!(crate::metric_definitions::CLAIMS, "result" => label.to_string()).increment(1);
    match claim {
        Claim::Granted(granted) => {
            let due = now_ms() + ttl as i64;
            worker.store.index_set(Index::Inflight, &task.run_id, due).await?;
            let baton_store::Granted { lease, state, stop, history } = *granted;
            Ok(Some(pipeline::Claimed { lease, state, stop, history, due }))
        }
        Claim::Refused(reason) => {
            tracing::info!(run_id = %task.run_id, step = task.step, attempt = task.attempt, %reason, "task dropped");
            match reason.as_str() {
                "terminal" | "missing" => worker.store.index_drop(Index::Inflight, &task.run_id).await?,
                // Whoever holds the lease may have died before indexing it: make sure the reaper
                // will look at the run once the lease expires.
                "leased" => {
                    let left = worker.store.lease_remaining_ms(&task.run_id).await?.unwrap_or(0);
                    worker.store.index_set_if_absent(Index::Inflight, &task.run_id, now_ms() + left).await?;
                }
                _ => {}
            }
            Ok(None)
        }
    }
}
