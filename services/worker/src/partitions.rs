//! Which partitions of the lane's task topic this worker consumes. The lane's workers share
//! them under Redis leases (role `worker-<lane>`, [`ShardShare`]) and consume what they hold by
//! assignment, not through the broker's group coordinator: a worker joining or leaving moves only
//! the partitions that change hands, within a refresh, while every other partition keeps being
//! consumed (a group rebalance stops them all). A partition moves when its holder gives it back
//! (a worker joined: the others give back what is above an equal share; a worker stops cleanly:
//! it gives back everything) or when its lease lapses (a worker died: `worker.liveness_ttl_ms`);
//! a worker restarted under its name takes its earlier instance's at once. A worker the broker
//! does not answer for [`BROKER_SILENCE`] gives its partitions back, so that workers the broker
//! answers take them; it takes a share again once the broker answers. A worker Redis does not
//! answer for a lease's length stops consuming: its leases have expired and others hold them. The partitions held are
//! also published to `baton:owners:<lane>`, where every producer's routing reads them. Nothing
//! here waits on the broker on the caller's thread: the topic's metadata (its partition count,
//! and proof that the broker answers) is read on a blocking thread in the background.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_bus::rdkafka::consumer::{CommitMode, Consumer as _};
use baton_bus::BatonConsumer;
use baton_service::shards::ShardShare;
use baton_store::Store;

/// How often the topic's metadata is read (partition count, and whether the broker answers).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for the topic's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
/// A worker the broker has not answered for this long gives its partitions back.
pub const BROKER_SILENCE: Duration = Duration::from_secs(5);
/// How often the partitions held are published (and so stay fresh for three times this).
const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// The partitions one worker holds, and what it knows of the topic.
pub struct Partitions {
    share: ShardShare,
    store: Store,
    topic: String,
    owners_key: String,
    worker: String,
    probe: Probe,
    held: Vec<i32>,
    published: Option<Instant>,
    given_up: bool,
}

/// The topic's partition count and when the broker last answered, read in the background.
#[derive(Clone, Default)]
struct Probe {
    state: Arc<Mutex<ProbeState>>,
}

#[derive(Default)]
struct ProbeState {
    count: Option<i32>,
    answered: Option<Instant>,
    started: Option<Instant>,
    last_read: Option<Instant>,
    reading: bool,
}

impl Partitions {
    /// No partitions yet; `earlier` is the id prefix of instances this worker replaces.
    pub fn new(store: Store, lane: &str, topic: &str, worker: &str, lease: Duration, earlier: Option<String>) -> Self {
        let refresh = (lease / 6).clamp(Duration::from_millis(100), Duration::from_millis(500));
        let role = format!("worker-{lane}");
        Self {
            share: ShardShare::of(store.clone(), &role, worker, 0, lease, refresh, earlier),
            store,
            topic: topic.to_string(),
            owners_key: baton_store::keys::owners(lane),
            worker: worker.to_string(),
            probe: Probe::default(),
            held: Vec::new(),
            published: None,
            given_up: false,
        }
    }

    /// Takes, keeps and gives back partitions as due, and assigns the consumer what is held.
    /// Cheap to call often: the leases are refreshed at most every few hundred milliseconds.
    pub async fn tick(&mut self, consumer: &Arc<BatonConsumer>) {
        let (count, answering) = self.probe.read(consumer, &self.topic);
        let held = match count {
            _ if !answering => {
                if !self.given_up && !self.held.is_empty() {
                    tracing::warn!(topic = %self.topic, partitions = ?self.held,
                        "the broker has not answered for {BROKER_SILENCE:?}: partitions given back");
                    metrics::counter!(crate::metric_definitions::PARTITIONS_GIVEN_UP).increment(1);
                    self.share.release_all().await;
                }
                self.given_up = true;
                Vec::new()
            }
            // Not counted as a member before the count is known: the others would give back
            // partitions this worker cannot take yet.
            None => Vec::new(),
            Some(count) => {
                self.given_up = false;
                self.share.set_count(u16::try_from(count).unwrap_or(u16::MAX));
                let held = self.share.refresh().await;
                if self.share.lapsed() {
                    // Redis has not answered for a lease: others may consume them by now.
                    Vec::new()
                } else {
                    held.into_iter().map(i32::from).collect()
                }
            }
        };
        if held != self.held {
            if let Err(e) = baton_bus::assign(consumer, &self.topic, &held) {
                tracing::warn!(error = %e, "cannot change the consumer's assignment; retried");
                return;
            }
            self.held = held;
            metrics::gauge!(crate::metric_definitions::PARTITIONS_HELD).set(self.held.len() as f64);
            self.publish().await;
        } else if self.published.is_none_or(|at| at.elapsed() >= PUBLISH_EVERY) {
            self.publish().await;
        }
    }

    /// A clean stop: stored offsets committed, then every partition given back at once.
    pub async fn release(&mut self, consumer: &Arc<BatonConsumer>) {
        let committing = consumer.clone();
        let committed = tokio::task::spawn_blocking(move || committing.commit_consumer_state(CommitMode::Sync)).await;
        match committed {
            Ok(Ok(()))
            | Ok(Err(baton_bus::rdkafka::error::KafkaError::ConsumerCommit(
                baton_bus::rdkafka::types::RDKafkaErrorCode::NoOffset,
            ))) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "offset commit before giving partitions back failed"),
            Err(e) => tracing::warn!(error = %e, "offset commit before giving partitions back failed"),
        }
        if let Err(e) = baton_bus::assign(consumer, &self.topic, &[]) {
            tracing::warn!(error = %e, "cannot clear the consumer's assignment");
        }
        self.share.release_all().await;
        self.held.clear();
        self.publish().await;
    }

    async fn publish(&mut self) {
        let fresh_for_ms = 3 * PUBLISH_EVERY.as_millis() as u64;
        match self.store.publish_owners(&self.owners_key, &self.worker, &self.held, fresh_for_ms).await {
            Ok(_) => self.published = Some(Instant::now()),
            Err(e) => tracing::debug!(error = %e, "cannot publish partition owners"),
        }
    }
}

impl Probe {
    /// The partition count last read (`None` before the first answer) and whether the broker
    /// answered within [`BROKER_SILENCE`] (true while the first read is under way); starts a
    /// read on a blocking thread when none is under way and the last began [`PROBE_EVERY`] ago.
    fn read(&self, consumer: &Arc<BatonConsumer>, topic: &str) -> (Option<i32>, bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let started = *state.started.get_or_insert_with(Instant::now);
        let since = state.answered.unwrap_or(started);
        let answering = since.elapsed() < BROKER_SILENCE;
        let due = state.last_read.is_none_or(|at| at.elapsed() >= PROBE_EVERY);
        if due && !state.reading {
            state.reading = true;
            state.last_read = Some(Instant::now());
            let (this, consumer, topic) = (self.clone(), consumer.clone(), topic.to_string());
            tokio::task::spawn_blocking(move || {
                let metadata = consumer.fetch_metadata(Some(&topic), METADATA_TIMEOUT);
                let count = metadata
                    .ok()
                    .and_then(|m| m.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len() as i32))
                    .filter(|count| *count > 0);
                let mut state = this.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(count) = count {
                    state.count = Some(count);
                    state.answered = Some(Instant::now());
                }
                state.reading = false;
            });
        }
        (state.count, answering)
    }
}
