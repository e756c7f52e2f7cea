//! Partition ownership watchdog. Each worker records the lane partitions it owns in Redis
//! (`baton:owners:<lane>`, refreshed every few seconds, with its member id in the group); a partition that no live worker has
//! owned for longer than a rebalance should take is orphaned, and its tasks would wait forever.
//! A worker that sees one rejoins the consumer group, which makes every member rejoin and
//! produces a complete assignment. This guards against group coordinators that complete a
//! rebalance without telling every member (seen with tansu 0.6.0 after a member was killed);
//! against a healthy Kafka it never fires. The consume loop runs it, so a worker whose loop
//! stops stops claiming its partitions; the topic's metadata is read on a blocking thread in the
//! background, so a broker that does not answer never holds the loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_bus::rdkafka::consumer::Consumer as _;
use baton_bus::BatonConsumer;
use baton_store::Store;

/// How long the topic's partition count is trusted (partitions can be added).
const PARTITIONS_FRESH: Duration = Duration::from_secs(60);
/// Longest wait for the topic's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// State of the watchdog in one worker.
pub struct Owners {
    key: String,
    topic: String,
    worker: String,
    every: Duration,
    orphan_after: Duration,
    last_check: Instant,
    orphaned_since: HashMap<i32, Instant>,
    partitions: PartitionCount,
    /// The group generation (`RebalanceLog::generation`) whose member id is recorded in Redis.
    member_generation: u64,
}

/// The topic's partition count and when it was read, refreshed in the background.
#[derive(Clone, Default)]
struct PartitionCount {
    known: Arc<Mutex<Option<(i32, Instant)>>>,
    reading: Arc<AtomicBool>,
}

impl Owners {
    /// A watchdog for `topic`; a partition without a live owner for `orphan_after` triggers a rejoin.
    pub fn new(lane: &str, topic: &str, worker: &str, orphan_after: Duration) -> Self {
        Self {
            key: baton_store::keys::owners(lane),
            topic: topic.to_string(),
            worker: worker.to_string(),
            every: Duration::from_secs(2),
            orphan_after,
            last_check: Instant::now(),
            orphaned_since: HashMap::new(),
            partitions: PartitionCount::default(),
            member_generation: 0,
        }
    }

    /// Publishes this worker's partitions (and its member id in the group, for a restart to
    /// evict it by) and rejoins the group if one is orphaned. Cheap to call often: it acts at
    /// most every two seconds.
    pub async fn check(&mut self, store: &Store, consumer: &Arc<BatonConsumer>) {
        // As soon as the group gave one (a join ends in an assignment, which moves the
        // generation): a worker killed right after it joined is evicted too. One atomic load per
        // call otherwise.
        let generation = consumer.context().generation();
        if generation != self.member_generation {
            let member = consumer.context().member_id();
            let recorded = member.is_empty() || store.worker_member_set(&self.worker, &member).await.is_ok();
            if recorded {
                self.member_generation = generation;
            }
        }
        if self.last_check.elapsed() < self.every {
            return;
        }
        self.last_check = Instant::now();
        let mine: Vec<i32> =
            consumer.context().assigned().into_iter().filter(|(t, _)| *t == self.topic).map(|(_, p)| p).collect();
        let fresh_for_ms = 3 * self.every.as_millis() as u64;
        // Expiries and `now` are the Redis server's clock, the same for every worker.
        let (now, owners) = match store.publish_owners(&self.key, &self.worker, &mine, fresh_for_ms).await {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(error = %e, "cannot publish partition owners");
                return;
            }
        };
        let Some(partitions) = self.partitions.current(consumer, &self.topic) else { return };
        for p in 0..partitions {
            let owned = owners.get(&p).is_some_and(|until| *until > now);
            if owned {
                self.orphaned_since.remove(&p);
            } else {
                self.orphaned_since.entry(p).or_insert_with(Instant::now);
            }
        }
        if self.orphaned_since.values().any(|since| since.elapsed() > self.orphan_after) {
            let orphans: Vec<_> = self.orphaned_since.keys().copied().collect();
            tracing::warn!(topic = %self.topic, ?orphans, "partitions without a live owner, rejoining the group");
            metrics::counter!(crate::metric_definitions::REJOINS).increment(1);
            consumer.unsubscribe();
            if let Err(e) = consumer.subscribe(&[&self.topic]) {
                tracing::error!(error = %e, "cannot resubscribe");
            }
            self.orphaned_since.clear();
        }
    }
}

impl PartitionCount {
    /// The count last read (`None` before the first read answered); starts a read on a blocking
    /// thread when there is none yet or it is older than [`PARTITIONS_FRESH`].
    fn current(&self, consumer: &Arc<BatonConsumer>, topic: &str) -> Option<i32> {
        let known = *self.known.lock().unwrap_or_else(|e| e.into_inner());
        let stale = known.is_none_or(|(_, at)| at.elapsed() >= PARTITIONS_FRESH);
        if stale && !self.reading.swap(true, Ordering::SeqCst) {
            let (this, consumer, topic) = (self.clone(), consumer.clone(), topic.to_string());
            tokio::task::spawn_blocking(move || {
                let metadata = consumer.fetch_metadata(Some(&topic), METADATA_TIMEOUT);
                let count = metadata
                    .ok()
                    .and_then(|m| m.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len() as i32));
                if let Some(count) = count {
                    *this.known.lock().unwrap_or_else(|e| e.into_inner()) = Some((count, Instant::now()));
                }
                this.reading.store(false, Ordering::SeqCst);
            });
        }
        known.map(|(count, _)| count)
    }
}
