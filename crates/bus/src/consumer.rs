//! Consumers: group members whose offsets are stored explicitly by the caller (the lease, not
//! the offset, owns the work) and auto-committed in the background.

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::Message as _;

use crate::{base_config, Error, Result};

/// A stream consumer in `group`, subscribed to `topics`, starting from the earliest record of
/// partitions the group has never committed. Call `store_offset_from_message` once a record's
/// work is owned elsewhere; stored offsets are committed every second.
pub fn consumer(kafka: &baton_config::Kafka, group: &str, client_id: &str, topics: &[&str]) -> Result<StreamConsumer> {
    let mut c = base_config(kafka, client_id);
    c.set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", &kafka.assignment_strategy)
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", (kafka.session_timeout_ms / 4).max(250).to_string())
        .set("fetch.wait.max.ms", "50");
    let consumer: StreamConsumer = c.create().map_err(Error::Client)?;
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
