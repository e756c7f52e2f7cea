//! Consumers whose offsets are stored explicitly by the caller (the lease, not the offset, owns
//! the work) and auto-committed in the background: [`consumer`] is a member of a consumer group
//! (the group coordinator assigns its partitions); [`assigned_consumer`] consumes the partitions
//! its caller assigns (workers share their lane's partitions under Redis leases) and commits its
//! offsets under the group's name without joining it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::{Message as _, Offset, TopicPartitionList};

/// Consumer context that logs partition assignments and revocations, so an operator can see
/// which member owns which partitions after a rebalance, and keeps the current assignment.
pub struct RebalanceLog {
    group: String,
    assigned: Arc<Mutex<Vec<(String, i32)>>>,
    generation: AtomicU64,
}

impl RebalanceLog {
    /// The partitions this consumer owns now.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Counts assignments and revocations: it changes whenever the assignment does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn set_assigned(&self, parts: Vec<(String, i32)>) {
        if let Ok(mut a) = self.assigned.lock() {
            *a = parts;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// librdkafka's log lines are forwarded to tracing as warnings and errors only.
impl ClientContext for RebalanceLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {log_message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
            _ => {}
        }
    }
}

impl ConsumerContext for RebalanceLog {
    fn post_rebalance(&self, _base: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts: Vec<(String, i32)> =
                    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                tracing::info!(group = %self.group, partitions = ?parts, "partitions assigned");
                self.set_assigned(parts);
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(group = %self.group, count = tpl.count(), "partitions revoked");
                self.set_assigned(Vec::new());
            }
            Rebalance::Error(e) => tracing::warn!(group = %self.group, error = %e, "rebalance error"),
        }
    }
}

/// The consumer type every Baton service uses.
pub type BatonConsumer = StreamConsumer<RebalanceLog>;

use crate::{base_config, Error, Result};

/// A stream consumer in `group`, subscribed to `topics`, starting from the earliest record of
/// partitions the group has never committed. Call `store_offset_from_message` once a record's
/// work is owned elsewhere; stored offsets are committed every second.
pub fn consumer(kafka: &baton_config::Kafka, group: &str, client_id: &str, topics: &[&str]) -> Result<BatonConsumer> {
    let consumer = unsubscribed(kafka, group, client_id)?;
    consumer
        .subscribe(topics)
        .map_err(|source| Error::Admin { topic: topics.join(","), reason: source.to_string() })?;
    Ok(consumer)
}

/// A stream consumer of the partitions given to [`assign`], committing its offsets as `group`
/// (without joining it) and starting a partition the group never committed at its earliest record.
pub fn assigned_consumer(kafka: &baton_config::Kafka, group: &str, client_id: &str) -> Result<BatonConsumer> {
    unsubscribed(kafka, group, client_id)
}

/// Changes the partitions of `topic` an [`assigned_consumer`] consumes to `partitions`: those it
/// gives up have their stored offsets committed first (so whoever takes them next starts there),
/// those it takes start at the group's committed offset.
pub fn assign(consumer: &BatonConsumer, topic: &str, partitions: &[i32]) -> Result<()> {
    let now: Vec<i32> = consumer.context().assigned().into_iter().filter(|(t, _)| t == topic).map(|(_, p)| p).collect();
    let list = |parts: &mut dyn Iterator<Item = i32>| {
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            let _ = tpl.add_partition_offset(topic, p, Offset::Stored);
        }
        tpl
    };
    let gone = list(&mut now.iter().copied().filter(|p| !partitions.contains(p)));
    let new = list(&mut partitions.iter().copied().filter(|p| !now.contains(p)));
    let failed =
        |source: rdkafka::error::KafkaError| Error::Admin { topic: topic.to_string(), reason: source.to_string() };
    if gone.count() > 0 {
        let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Async);
        consumer.incremental_unassign(&gone).map_err(failed)?;
    }
    if new.count() > 0 {
        consumer.incremental_assign(&new).map_err(failed)?;
    }
    if gone.count() > 0 || new.count() > 0 {
        let mut parts: Vec<(String, i32)> = partitions.iter().map(|p| (topic.to_string(), *p)).collect();
        parts.sort();
        tracing::info!(group = %consumer.context().group, topic, partitions = ?partitions, "partitions assigned");
        consumer.context().set_assigned(parts);
    }
    Ok(())
}

fn unsubscribed(kafka: &baton_config::Kafka, group: &str, client_id: &str) -> Result<BatonConsumer> {
    let mut c = base_config(kafka, client_id);
    c.set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", &kafka.assignment_strategy)
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set("max.poll.interval.ms", kafka.max_poll_interval_ms.to_string())
        // Members learn of a rebalance at their next heartbeat: often, so partitions stay unowned
        // briefly when a member joins or leaves.
        .set("heartbeat.interval.ms", (kafka.session_timeout_ms / 10).clamp(250, 1_000).to_string())
        .set("fetch.wait.max.ms", kafka.fetch_wait_max_ms.to_string());
    c.create_with_context(RebalanceLog {
        group: group.to_string(),
        assigned: Arc::default(),
        generation: AtomicU64::new(0),
    })
    .map_err(Error::Client)
}

/// The `traceparent` header of a record, if any.
pub fn traceparent_of(message: &BorrowedMessage<'_>) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == "traceparent")
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
}
