//! Retry tiers: consume every `<prefix>.tasks.retry.<tier>` topic and re-publish each task to
//! its lane when its not-before time comes. A partition whose head is not due is paused until
//! it is, so nothing sleeps per message and a short tier never waits behind a long one.
//! Offsets are stored only after the re-publish is acknowledged.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use baton_bus::rdkafka::consumer::{CommitMode, Consumer as _};
use baton_bus::rdkafka::{Message as _, TopicPartitionList};
use baton_bus::{BatonConsumer, IdlePause};
use baton_core::retry::tier_label;
use baton_proto::v1::Task;
use baton_telemetry::{now_ms, LoopTicker};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

/// A partition's records that are not yet due, in offset order.
#[derive(Default)]
struct Partition {
    queue: VecDeque<(i64, Task)>,
    last_offset: i64,
    paused: bool,
}

/// Consumes the retry tiers until `shutdown`.
pub async fn run(
    config: &baton_config::Config,
    id: &str,
    producer: &baton_bus::Producer,
    ticker: &LoopTicker,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let topics = producer.topics();
    let names: Vec<String> = config.scheduler.retry_tiers_ms.iter().map(|t| topics.retry(&tier_label(*t))).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let consumer = std::sync::Arc::new(baton_bus::consumer(&config.kafka, &topics.scheduler_group(), id, &refs)?);
    let mut partitions: BTreeMap<(String, i32), Partition> = BTreeMap::new();
    // With no retry queued, the tiers are paused until a worker produces one (a wake-up).
    let mut idle =
        IdlePause::new(consumer.clone(), Duration::from_millis(config.kafka.idle_pause_ms), Duration::from_secs(60));
    let mut wakes = baton_store::subscribe_wakes(&config.redis.url)?;
    loop {
        ticker.tick();
        release_due(&consumer, producer, &mut partitions).await;
        idle.tick(partitions.values().all(|p| p.queue.is_empty()));
        let next_due = partitions.values().filter_map(|p| p.queue.front()).map(|(_, t)| t.not_before_ms).min();
        let wait = next_due.map_or(250, |due| (due - now_ms()).clamp(1, 250)) as u64;
        let message = tokio::select! {
            m = consumer.recv() => m,
            Some(woken) = wakes.recv() => {
                if names.contains(&woken) {
                    idle.active();
                }
                continue;
            }
            _ = tokio::time::sleep(Duration::from_millis(wait)) => continue,
            _ = shutdown.cancelled() => break,
        };
        idle.active();
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "retry consumer error");
                continue;
            }
        };
        let key = (message.topic().to_string(), message.partition());
        let part = partitions.entry(key.clone()).or_insert_with(|| Partition { last_offset: -1, ..Default::default() });
        if message.offset() <= part.last_offset {
            continue; // Re-delivered after a pause or rebalance: already queued or released.
        }
        part.last_offset = message.offset();
        match message.payload().map(Task::decode) {
            Some(Ok(task)) => {
                tracing::debug!(topic = %key.0, partition = key.1, offset = message.offset(), run_id = %task.run_id,
                    due_in_ms = task.not_before_ms - now_ms(), "retry received");
                part.queue.push_back((message.offset(), task));
            }
            _ => {
                tracing::error!(topic = %key.0, partition = key.1, offset = message.offset(), "undecodable retry record skipped");
                if part.queue.is_empty() {
                    let _ = consumer.store_offset(&key.0, key.1, message.offset());
                }
                continue;
            }
        }
        let head_due = part.queue.front().is_some_and(|(_, t)| t.not_before_ms <= now_ms());
        if !head_due && !part.paused {
            set_paused(&consumer, &key, true);
            part.paused = true;
        }
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(baton_bus::rdkafka::error::KafkaError::ConsumerCommit(_)) => {}
        Err(e) => tracing::warn!(error = %e, "final offset commit failed"),
    }
    Ok(())
}

/// Re-publishes every due head record to its lane; resumes partitions that emptied.
async fn release_due(
    consumer: &BatonConsumer,
    producer: &baton_bus::Producer,
    partitions: &mut BTreeMap<(String, i32), Partition>,
) {
    let now = now_ms();
    for (key, part) in partitions.iter_mut() {
        while let Some((offset, task)) = part.queue.front() {
            if task.not_before_ms > now {
                break;
            }
            if let Err(e) = producer.send_task(task).await {
                tracing::warn!(run_id = %task.run_id, error = %e, "retry not re-published yet");
                break;
            }
            tracing::debug!(topic = %key.0, partition = key.1, offset, run_id = %task.run_id, "retry released");
            metrics::counter!(crate::metric_definitions::RETRIES_RELEASED, "topic" => key.0.clone()).increment(1);
            metrics::histogram!(crate::metric_definitions::RETRY_LATENESS)
                .record((now_ms() - task.not_before_ms).max(0) as f64 / 1000.0);
            if let Err(e) = consumer.store_offset(&key.0, key.1, *offset) {
                tracing::warn!(error = %e, "cannot store retry offset");
            }
            part.queue.pop_front();
        }
        if part.queue.is_empty() && part.paused {
            set_paused(consumer, key, false);
            part.paused = false;
        }
    }
}

fn set_paused(consumer: &BatonConsumer, (topic, partition): &(String, i32), paused: bool) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, *partition);
    let result = if paused { consumer.pause(&tpl) } else { consumer.resume(&tpl) };
    if let Err(e) = result {
        tracing::warn!(topic, partition, paused, error = %e, "cannot change partition pause state");
    }
}
