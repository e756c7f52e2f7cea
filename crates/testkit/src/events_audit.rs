//! Audits `baton.events` against the runs' Redis streams: every event Redis committed must be on
//! the topic at least once. First waits (bounded) until each run's publication marker has caught
//! up — the reaper re-publishes what a crash left unconfirmed — then reads the whole topic.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use baton_bus::rdkafka::consumer::{BaseConsumer, Consumer as _};
use baton_bus::rdkafka::error::KafkaError;
use baton_bus::rdkafka::types::RDKafkaErrorCode;
use baton_bus::rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use baton_proto::v1::EventBatch;
use prost::Message as _;

/// What the audit found.
#[derive(Debug, Clone, Default)]
pub struct EventsAudit {
    /// Events committed in Redis, over the audited runs.
    pub committed: usize,
    /// Committed events not found on the topic: `<run>:<seq>`.
    pub missing: Vec<String>,
    /// Records on the topic repeating an event already seen (at-least-once delivery).
    pub duplicates: usize,
    /// The arguments and detail text of the audited runs' events on the topic, to check that
    /// nothing redacted reached it.
    pub texts: Vec<String>,
}

/// Audits the events of `runs` on `<prefix>.events` of the broker at `bootstrap`, waiting up to
/// `settle` for their publication markers to catch up.
pub async fn audit(store: &baton_store::Store, bootstrap: &str, runs: &[String], settle: Duration) -> EventsAudit {
    let deadline = Instant::now() + settle;
    let mut committed: Vec<(String, u64)> = Vec::new();
    for run in runs {
        // The reaper re-publishes unconfirmed events; wait for it, within the bound.
        while Instant::now() < deadline && store.unpublished_events(run).await.map(|e| !e.is_empty()).unwrap_or(true) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut after = None;
        loop {
            let batch = store.events_after(run, after.as_deref(), 512).await.unwrap_or_default();
            let Some(last) = batch.last() else { break };
            after = Some(last.stream_id.clone());
            committed.extend(batch.iter().map(|e| (run.clone(), e.event.seq)));
        }
    }
    let wanted: HashSet<String> = runs.iter().cloned().collect();
    let bootstrap = bootstrap.to_string();
    let on_topic = tokio::task::spawn_blocking(move || read_topic(&bootstrap, "baton.events", &wanted))
        .await
        .unwrap_or_else(|e| Err(format!("topic reader panicked: {e}")));
    let (seen, duplicates, texts) = match on_topic {
        Ok(found) => found,
        Err(e) => {
            let missing = vec![format!("cannot read the topic: {e}")];
            return EventsAudit { committed: committed.len(), missing, ..Default::default() };
        }
    };
    let missing = committed.iter().filter(|k| !seen.contains(*k)).map(|(r, s)| format!("{r}:{s}")).collect();
    EventsAudit { committed: committed.len(), missing, duplicates, texts }
}

/// What was read of the wanted runs: every `(run, seq)`, how many records repeated one, and
/// the events' arguments and detail texts.
type OnTopic = (HashSet<(String, u64)>, usize, Vec<String>);

/// Reads `topic` to its end for the wanted runs' events.
fn read_topic(bootstrap: &str, topic: &str, wanted: &HashSet<String>) -> Result<OnTopic, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("baton-audit-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("log_level", "3")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment.add_partition_offset(topic, *p, Offset::Beginning).map_err(|e| e.to_string())?;
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut texts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < partitions.len() {
        if Instant::now() > deadline {
            return Err(format!("did not reach the end of {topic} within 60 s"));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                return Err(e.to_string())
            }
            Some(Err(_)) => {}
            Some(Ok(m)) => {
                let Some(batch) = m.payload().and_then(|p| EventBatch::decode(p).ok()) else { continue };
                for event in batch.events.into_iter().filter(|e| wanted.contains(&e.run_id)) {
                    texts.extend([event.args_json, event.detail].into_iter().filter(|t| !t.is_empty()));
                    if !seen.insert((event.run_id, event.seq)) {
                        duplicates += 1;
                    }
                }
            }
        }
    }
    Ok((seen, duplicates, texts))
}
