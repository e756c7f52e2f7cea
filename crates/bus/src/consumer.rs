//! Consumers: group members whose offsets are stored explicitly by the caller (the lease, not
//! the offset, owns the work) and auto-committed in the background.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::Message as _;

/// Consumer context that logs partition assignments and revocations, so an operator can see
/// which member owns which partitions after a rebalance, and keeps the current assignment and
/// the member id the group coordinator gave this consumer.
pub struct RebalanceLog {
    group: String,
    assigned: Arc<Mutex<Vec<(String, i32)>>>,
    generation: AtomicU64,
    member_id: Mutex<String>,
}

impl RebalanceLog {
    /// The partitions this member owns now.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// This consumer's member id in its group (empty before it joined): what a restarted
    /// worker names to remove this one from the group (`evict_members`).
    pub fn member_id(&self) -> String {
        self.member_id.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Counts assignments and revocations: it changes whenever the assignment does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// librdkafka tells a consumer's member id only in a debug line of its group context (facility
/// `MEMBERID`, `Group "<g>": updating member id "<old>" -> "<new>"`; the `cgrp` debug context is
/// on for consumers for that alone). Other lines are forwarded to tracing as warnings and errors
/// only, as `log_level` 4 does for every other client.
impl ClientContext for RebalanceLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "MEMBERID" {
            if let (Some(id), Ok(mut member)) = (updated_member_id(log_message), self.member_id.lock()) {
                *member = id;
            }
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {log_message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
            _ => {}
        }
    }
}

/// The new member id of a `MEMBERID` line (empty for `(not-set)`), if the line is one.
fn updated_member_id(line: &str) -> Option<String> {
    let (_, new) = line.rsplit_once(" -> \"")?;
    let id = new.strip_suffix('"')?;
    Some(if id == "(not-set)" { String::new() } else { id.to_string() })
}

impl ConsumerContext for RebalanceLog {
    fn post_rebalance(&self, _base: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts: Vec<(String, i32)> =
                    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                tracing::info!(group = %self.group, partitions = ?parts, "partitions assigned");
                if let Ok(mut a) = self.assigned.lock() {
                    *a = parts;
                }
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(group = %self.group, count = tpl.count(), "partitions revoked");
                if let Ok(mut a) = self.assigned.lock() {
                    a.clear();
                }
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
        // briefly when a member joins or leaves (docs/reliability.md, rolling restart).
        .set("heartbeat.interval.ms", (kafka.session_timeout_ms / 10).clamp(250, 1_000).to_string())
        .set("fetch.wait.max.ms", kafka.fetch_wait_max_ms.to_string())
        // For the member id only (see `RebalanceLog`'s `log`): debug lines of the group context.
        .set("debug", "cgrp")
        .set_log_level(RDKafkaLogLevel::Debug);
    let consumer: BatonConsumer = c
        .create_with_context(RebalanceLog {
            group: group.to_string(),
            assigned: Arc::default(),
            generation: AtomicU64::new(0),
            member_id: Mutex::default(),
        })
        .map_err(Error::Client)?;
    consumer
        .subscribe(topics)
        .map_err(|source| Error::Admin { topic: topics.join(","), reason: source.to_string() })?;
    Ok(consumer)
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

#[cfg(test)]
mod tests {
    use super::updated_member_id;

    #[test]
    fn the_member_id_is_read_from_librdkafkas_line() {
        let line = r#"Group "baton-worker-main": updating member id "(not-set)" -> "w@1-2-5d0c""#;
        assert_eq!(updated_member_id(line).as_deref(), Some("w@1-2-5d0c"));
        let left = r#"Group "baton-worker-main": updating member id "w@1-2-5d0c" -> "(not-set)""#;
        assert_eq!(updated_member_id(left).as_deref(), Some(""));
        assert_eq!(updated_member_id("Heartbeat for group"), None);
    }
}
