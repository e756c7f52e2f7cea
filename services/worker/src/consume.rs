//! The consumer loop: keep this worker's share of the lane's partitions ([`crate::partitions`]),
//! take a permit, receive a task, and on its own task claim it, store its offset once every
//! earlier record of the partition is decided (the lease now owns the work), and run the
//! claimed run's slice through [`crate::pipeline`]. Claims of different runs run
//! concurrently, bounded by the permits (`worker.concurrency`). Readiness watches the loop as
//! the "consume loop": waiting for a permit while every holder is within a slice's bound is
//! busy, not stuck ([`crate::permits`]).

use std::sync::Arc;
use std::time::Duration;

use baton_bus::rdkafka::consumer::Consumer as _;
use baton_bus::rdkafka::Message as _;
use baton_bus::IdlePause;
use baton_proto::v1::Task;
use baton_store::{Claim, Index};
use baton_telemetry::shutdown::bounded_drain;
use baton_telemetry::{now_ms, Readiness};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::permits::Permits;
use crate::{pipeline, Worker};

/// The consume loop counts as stuck after this long without going round.
const LOOP_STALE_MS: i64 = 10_000;

/// Consumes the lane's tasks until `shutdown`, then gives its partitions back and drains
/// in-flight steps. `earlier` is the id prefix of instances this worker replaces.
pub async fn consume(
    worker: Arc<Worker>,
    readiness: Readiness,
    shutdown: CancellationToken,
    earlier: Option<String>,
) -> anyhow::Result<()> {
    let cfg = &worker.config;
    let topics = worker.producer.topics().clone();
    let topic = topics.tasks(&cfg.worker.lane);
    let group = topics.worker_group(&cfg.worker.lane);
    let consumer = Arc::new(baton_bus::assigned_consumer(&cfg.kafka, &group, &worker.id)?);
    let offsets = Arc::new(crate::offsets::Offsets::default());
    let permits = Permits::new(
        cfg.worker.concurrency,
        Duration::from_millis(cfg.worker.slice_max_ms),
        Duration::from_millis(cfg.worker.step_timeout_ms),
    );
    let ticker = readiness.watch_loop("consume loop", LOOP_STALE_MS);
    readiness.set_started();
    let steps = TaskTracker::new();
    // Fired only when the drain grace runs out: in-flight steps stop and are handed back.
    let abandon = CancellationToken::new();
    let lease = Duration::from_millis(cfg.worker.liveness_ttl_ms);
    let mut partitions =
        crate::partitions::Partitions::new(worker.store.clone(), &cfg.worker.lane, &topic, &worker.id, lease, earlier);
    // An idle worker pauses its partitions; a wake-up for its lane's topic resumes them.
    let mut idle =
        IdlePause::new(consumer.clone(), Duration::from_millis(cfg.kafka.idle_pause_ms), Duration::from_secs(60));
    let mut wakes = baton_store::subscribe_wakes(&cfg.redis.url)?;
    'consume: loop {
        ticker.tick();
        partitions.tick(&consumer).await;
        // An operator's lane pause holds the partitions; tasks wait on the topic.
        idle.hold(worker.switches.lane_paused(&cfg.worker.lane));
        idle.tick(true);
        let permit = loop {
            tokio::select! {
                p = permits.acquire() => break p?,
                _ = shutdown.cancelled() => break 'consume,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {
                    // Every permit is held: busy, not stuck, while each holder is within bound;
                    // the partitions stay this worker's meanwhile.
                    if permits.holders_within_bound() {
                        ticker.tick();
                        partitions.tick(&consumer).await;
                    }
                }
            }
        };
        let message = tokio::select! {
            m = consumer.recv() => m,
            Some(woken) = wakes.recv() => {
                if woken == topic {
                    idle.active();
                }
                continue;
            }
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
        };
        idle.active();
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                continue;
            }
        };
        if idle.is_held() {
            // Fetched before the hold: left unclaimed and unstored; the resume seeks back to it.
            continue;
        }
        let task = match message.payload().map(Task::decode) {
            Some(Ok(task)) if !task.run_id.is_empty() => task,
            other => {
                let error = match other {
                    Some(Err(e)) => format!("not a baton.v1.Task: {e}"),
                    Some(Ok(_)) => "not a baton.v1.Task: no run id".to_string(),
                    None => "not a baton.v1.Task: no payload".to_string(),
                };
                tracing::error!(topic = %topic, partition = message.partition(), offset = message.offset(),
                    %error, "undecodable task: copied to the dead-letter topic, partition moves on");
                metrics::counter!(crate::metric_definitions::TASKS_UNDECODABLE).increment(1);
                // Off the consume loop: a slow broker must not hold the partition behind it.
                let (producer, origin) =
                    (worker.producer.clone(), (topic.to_string(), message.partition(), message.offset()));
                let (key, payload) =
                    (message.key().unwrap_or_default().to_vec(), message.payload().unwrap_or_default().to_vec());
                tokio::spawn(async move {
                    let at = (origin.0.as_str(), origin.1, origin.2);
                    if let Err(e) = producer.send_undecodable(at, &key, &payload, &error).await {
                        tracing::warn!(error = %e, "undecodable task not copied to the dead-letter topic");
                    }
                });
                offsets.received(message.topic(), message.partition(), message.offset());
                if let Some(offset) = offsets.decided(message.topic(), message.partition(), message.offset()) {
                    let _ = consumer.store_offset(message.topic(), message.partition(), offset);
                }
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
        let origin = pipeline::Origin {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            traceparent,
        };
        offsets.received(&origin.topic, origin.partition, origin.offset);
        let (worker, abandon, offsets, consumer) = (worker.clone(), abandon.clone(), offsets.clone(), consumer.clone());
        steps.spawn(async move {
            let claiming = std::time::Instant::now();
            let Some(claim) = claim_until_decided(&worker, &task).await else { return };
            pipeline::phase("claim", claiming);
            if let Some(offset) = offsets.decided(&origin.topic, origin.partition, origin.offset) {
                if let Err(e) = consumer.store_offset(&origin.topic, origin.partition, offset) {
                    tracing::debug!(error = %e, "cannot store offset (partition revoked?)");
                }
            }
            if let Some(claimed) = claim {
                pipeline::run_slice(&worker, claimed, origin, abandon).await;
            }
            drop(permit);
        });
    }
    readiness.set_draining();
    // Whoever takes the partitions starts where this worker's decided records end.
    partitions.release(&consumer).await;
    steps.close();
    tracing::info!(in_flight = steps.len(), "draining worker");
    let grace = Duration::from_millis(worker.config.worker.drain_grace_ms);
    if !bounded_drain("in-flight steps", grace, steps.wait()).await {
        // Stop the remaining steps; each hands its run back to the lane.
        abandon.cancel();
        steps.wait().await;
    }
    Ok(())
}

/// Claims the task's step, retrying while Redis is unavailable; `None` if the worker began
/// draining first (the offset stays unstored: the record is read again). `Some(None)`: the task
/// is a duplicate or not to run now.
async fn claim_until_decided(worker: &Worker, task: &Task) -> Option<Option<pipeline::Claimed>> {
    loop {
        match claim(worker, task).await {
            Ok(claim) => return Some(claim),
            Err(e) => tracing::warn!(run_id = %task.run_id, error = %e, "claim failed, retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = worker.draining.cancelled() => return None,
        }
    }
}

/// Claims the task's step. `Ok(None)` means the task is a duplicate or not to run now.
async fn claim(worker: &Worker, task: &Task) -> baton_store::Result<Option<pipeline::Claimed>> {
    let ttl = worker.config.worker.lease_ttl_ms;
    let window = worker.config.history_window();
    let claim = worker.store.claim(&task.run_id, task.step, task.attempt, &worker.id, ttl, window).await?;
    let label = match &claim {
        Claim::Granted(..) => "granted",
        Claim::Refused(reason) if reason.starts_with("newer_schema") => "newer_schema",
        Claim::Refused(reason) => reason.as_str(),
    };
    metrics::counter!(crate::metric_definitions::CLAIMS, "result" => label.to_string()).increment(1);
    match claim {
        Claim::Granted(granted) => {
            let due = now_ms() + ttl as i64;
            worker.store.index_set(Index::Inflight, &task.run_id, due).await?;
            worker.store.worker_holds(&worker.id, &task.run_id, true).await?;
            let baton_store::Granted { lease, state, stop, history, unpublished } = *granted;
            let read = state.encoded_len() + history.iter().map(prost::Message::encoded_len).sum::<usize>();
            metrics::histogram!(crate::metric_definitions::CLAIM_BYTES).record(read as f64);
            Ok(Some(pipeline::Claimed { lease, state, stop, history, unpublished, due }))
        }
        Claim::Refused(reason) if reason.starts_with("newer_schema") => {
            // The reaper dispatches it again after the dispatch grace: a newer worker takes it.
            tracing::error!(run_id = %task.run_id, step = task.step, %reason, "task refused: checkpoint from a newer Baton");
            Ok(None)
        }
        Claim::Refused(reason) => {
            tracing::info!(run_id = %task.run_id, step = task.step, attempt = task.attempt, %reason, "task dropped");
            // A run that ended keeps whatever index entries it has: removing one here could
            // race a requeue that just wrote a fresh one; the reaper clears them as it reads them.
            // Whoever holds the lease may have died before indexing it: make sure the reaper
            // will look at the run once the lease expires.
            if reason == "leased" {
                let left = worker.store.lease_remaining_ms(&task.run_id).await?.unwrap_or(0);
                worker.store.index_set_if_absent(Index::Inflight, &task.run_id, now_ms() + left).await?;
            }
            Ok(None)
        }
    }
}
