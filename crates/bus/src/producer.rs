//! The one producer wrapper: idempotent, keyed by run id, protobuf payloads, `traceparent` header.

use std::time::Duration;

use baton_proto::v1::{DeadLetter, EventBatch, RunEvent, Task};
use prost::Message as _;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::Producer as _;

use crate::delivery::{delivered, enqueue, spawn_poller, Client, Delivery, DeliveryHealth, Outgoing, Reports};
use crate::{base_config, Error, Result, Topics};

/// Called with a topic's name after a task or retry was produced to it: wakes paused consumers.
pub type Wake = std::sync::Arc<dyn Fn(String) + Send + Sync>;

/// Picks the partition of a lane's topic a task goes to (`None`: the one its key hashes to):
/// one a live worker owns, so a dead worker's partitions do not swallow tasks.
pub type Route = std::sync::Arc<dyn Fn(&str, &str) -> Option<i32> + Send + Sync>;

/// Produces tasks and events. Cheap to clone.
#[derive(Clone)]
pub struct Producer {
    inner: Client,
    health: std::sync::Arc<DeliveryHealth>,
    topics: Topics,
    wake: Option<Wake>,
    route: Option<Route>,
    redaction: std::sync::Arc<baton_core::redact::Redaction>,
}

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest batch of events put in one record before it is produced (well under Kafka's 1 MB).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Header of a retry record: earliest time (ms since epoch) it may run.
pub const NOT_BEFORE_HEADER: &str = "baton-not-before";
/// Header of retry and dead-letter records: the lane of the run.
pub const LANE_HEADER: &str = "baton-lane";

impl Producer {
    /// A producer for the configured brokers.
    pub fn new(kafka: &baton_config::Kafka, client_id: &str) -> Result<Self> {
        let mut c = base_config(kafka, client_id);
        c.set("enable.idempotence", kafka.idempotence.to_string())
            .set("linger.ms", kafka.linger_ms.to_string())
            .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
            .set("compression.type", "none");
        let inner: Client = std::sync::Arc::new(c.create_with_context(Reports).map_err(Error::Client)?);
        spawn_poller(&inner);
        Ok(Self {
            inner,
            health: Default::default(),
            topics: Topics::new(&kafka.topic_prefix),
            wake: None,
            route: None,
            redaction: Default::default(),
        })
    }

    /// Wakes paused consumers through `wake` after each task or retry (set before cloning).
    pub fn set_wake(&mut self, wake: Wake) {
        self.wake = Some(wake);
    }

    /// Routes tasks through `route` (set before cloning).
    pub fn set_route(&mut self, route: Route) {
        self.route = Some(route);
    }

    /// Masks what `redaction` names in every event produced.
    pub fn set_redaction(&mut self, redaction: std::sync::Arc<baton_core::redact::Redaction>) {
        self.redaction = redaction;
    }

    fn woke(&self, topic: &str, sent: Result<()>) -> Result<()> {
        if let (Ok(()), Some(wake)) = (&sent, &self.wake) {
            wake(topic.to_string());
        }
        sent
    }

    /// The topic names this producer writes to.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Produces `task` to its lane's topic and waits for the broker's acknowledgement.
    pub async fn send_task(&self, task: &Task) -> Result<()> {
        let topic = self.topics.tasks(&task.lane);
        let partition = self.route.as_ref().and_then(|route| route(&topic, &task.run_id));
        let headers = self.task_headers(task, &[]);
        let sent = self.send_with(&topic, &task.run_id, task.encode_to_vec(), headers, partition).await;
        self.woke(&topic, sent)
    }

    /// Produces a retry `task` to the tier topic `tier_label`; headers carry its not-before
    /// time and lane.
    pub async fn send_retry(&self, task: &Task, tier_label: &str) -> Result<()> {
        let topic = self.topics.retry(tier_label);
        let not_before = task.not_before_ms.to_string();
        let extra = [(NOT_BEFORE_HEADER, not_before.as_str()), (LANE_HEADER, task.lane.as_str())];
        let headers = self.task_headers(task, &extra);
        let sent = self.send_with(&topic, &task.run_id, task.encode_to_vec(), headers, None).await;
        self.woke(&topic, sent)
    }

    /// Produces a dead letter to the DLQ topic; headers name its origin, attempts and error.
    pub async fn send_dead_letter(&self, letter: &DeadLetter) -> Result<()> {
        let topic = self.topics.dlq();
        let (partition, offset, attempts) =
            (letter.origin_partition.to_string(), letter.origin_offset.to_string(), letter.attempts.to_string());
        let headers = [
            ("baton-origin-topic", letter.origin_topic.as_str()),
            ("baton-origin-partition", partition.as_str()),
            ("baton-origin-offset", offset.as_str()),
            ("baton-attempts", attempts.as_str()),
            ("baton-error", letter.error.as_str()),
            (LANE_HEADER, letter.lane.as_str()),
        ];
        self.send(&topic, &letter.run_id, letter.encode_to_vec(), &headers).await
    }

    /// Copies a record that did not decode as a task to the DLQ topic as it came (same key and
    /// bytes), with headers naming where it came from and why it was refused, so an operator
    /// can inspect it while its partition moves on.
    pub async fn send_undecodable(
        &self,
        origin: (&str, i32, i64),
        key: &[u8],
        payload: &[u8],
        error: &str,
    ) -> Result<()> {
        let (origin_topic, partition, offset) = origin;
        let (partition, offset) = (partition.to_string(), offset.to_string());
        let headers = [
            ("baton-origin-topic", origin_topic),
            ("baton-origin-partition", partition.as_str()),
            ("baton-origin-offset", offset.as_str()),
            ("baton-error", error),
        ];
        let key = String::from_utf8_lossy(key);
        self.send(&self.topics.dlq(), &key, payload.to_vec(), &headers).await
    }

    /// Produces one run's `events` to the events topic and waits for the acknowledgement.
    pub async fn send_events(&self, events: &[RunEvent]) -> Result<()> {
        let mut pending = Pending::default();
        self.enqueue_events(events, &mut pending).await?;
        self.delivered(pending).await
    }

    /// Adds one run's `events` to `pending`, its batch of events not yet produced; a batch that
    /// reached [`MAX_BATCH_BYTES`] is handed to the producer now. Nothing waits for the broker.
    pub async fn enqueue_events(&self, events: &[RunEvent], pending: &mut Pending) -> Result<()> {
        for event in events {
            let event = self.redaction.redacted(event).unwrap_or_else(|| event.clone());
            pending.batch_bytes += event.encoded_len();
            pending.batch.push(event);
        }
        if pending.batch_bytes >= MAX_BATCH_BYTES {
            self.flush_batch(pending).await?;
        }
        Ok(())
    }

    /// Produces what is left of `pending`'s batch and waits until every record of it was
    /// acknowledged; the first failure is returned (the rest are still awaited, so nothing is
    /// left in flight).
    pub async fn delivered(&self, mut pending: Pending) -> Result<()> {
        self.flush_batch(&mut pending).await?;
        let mut first_error = None;
        for (topic, delivery) in pending.deliveries {
            let outcome = delivered(delivery).await;
            self.health.record(&outcome);
            match outcome {
                Ok(()) => metrics::counter!(crate::metric_definitions::PRODUCED, "topic" => topic.clone()).increment(1),
                Err(source) => {
                    first_error.get_or_insert(Error::Produce { topic, source });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Hands the batch to the producer as one record (one idempotent producer keeps a run's
    /// records in order within its partition); waits only when the queue is full.
    async fn flush_batch(&self, pending: &mut Pending) -> Result<()> {
        let Some(run_id) = pending.batch.first().map(|e| e.run_id.clone()) else { return Ok(()) };
        let topic = self.topics.events();
        let payload = EventBatch { events: std::mem::take(&mut pending.batch) }.encode_to_vec();
        pending.batch_bytes = 0;
        let out =
            Outgoing { topic: &topic, key: &run_id, payload: &payload, headers: self.headers(&[]), partition: None };
        let delivery = enqueue(&self.inner, out, DELIVERY_TIMEOUT).await.map_err(|source| {
            self.health.record(&Err(source.clone()));
            Error::Produce { topic: topic.clone(), source }
        })?;
        pending.deliveries.push((topic, delivery));
        Ok(())
    }

    fn headers(&self, extra: &[(&str, &str)]) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        for (k, v) in extra {
            headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        if let Some(tp) = baton_telemetry::trace::current_traceparent() {
            headers = headers.insert(Header { key: "traceparent", value: Some(tp.as_bytes()) });
        }
        headers
    }

    /// A task record's headers: `extra`, and the `traceparent` of the current span when it is in
    /// the run's trace (a worker's step), else the run's own (a hop by the scheduler or reaper).
    fn task_headers(&self, task: &Task, extra: &[(&str, &str)]) -> OwnedHeaders {
        let current = baton_telemetry::trace::current_traceparent();
        let trace_of = |tp: &str| tp.split('-').nth(1).map(str::to_string);
        let traceparent = match current {
            Some(tp) if task.traceparent.is_empty() || trace_of(&tp) == trace_of(&task.traceparent) => Some(tp),
            _ if !task.traceparent.is_empty() => Some(task.traceparent.clone()),
            other => other,
        };
        let mut headers = OwnedHeaders::new();
        for (k, v) in extra {
            headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        if let Some(tp) = &traceparent {
            headers = headers.insert(Header { key: "traceparent", value: Some(tp.as_bytes()) });
        }
        headers
    }

    async fn send(&self, topic: &str, key: &str, payload: Vec<u8>, extra: &[(&str, &str)]) -> Result<()> {
        self.send_with(topic, key, payload, self.headers(extra), None).await
    }

    async fn send_with(
        &self,
        topic: &str,
        key: &str,
        payload: Vec<u8>,
        headers: OwnedHeaders,
        partition: Option<i32>,
    ) -> Result<()> {
        let out = Outgoing { topic, key, payload: &payload, headers, partition };
        let sent = match enqueue(&self.inner, out, DELIVERY_TIMEOUT).await {
            Ok(delivery) => delivered(delivery).await,
            Err(e) => Err(e),
        };
        self.health.record(&sent);
        match sent {
            Ok(()) => {
                metrics::counter!(crate::metric_definitions::PRODUCED, "topic" => topic.to_string()).increment(1);
                Ok(())
            }
            Err(source) => Err(Error::Produce { topic: topic.to_string(), source }),
        }
    }

    /// True if the broker answers a metadata request within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> bool {
        let inner = self.inner.clone();
        // One small topic's metadata: a round trip to the broker, not a description of every topic.
        let topic = self.topics.events();
        tokio::task::spawn_blocking(move || inner.client().fetch_metadata(Some(&topic), timeout).is_ok())
            .await
            .unwrap_or(false)
    }

    /// What is wrong with the producer's deliveries: `Some` while the latest one failed (within
    /// the last minute), with its error.
    pub fn delivery_problem(&self) -> Option<String> {
        self.health.problem(baton_telemetry::now_ms())
    }

    /// Waits up to `timeout` for queued records to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.inner.flush(timeout) {
            tracing::warn!(error = %e, "producer flush incomplete");
        }
    }
}

/// One run's events on their way to `baton.events`: a batch not produced yet, and records
/// produced whose delivery has not been awaited. Awaited with [`Producer::delivered`].
#[derive(Default)]
pub struct Pending {
    batch: Vec<RunEvent>,
    batch_bytes: usize,
    deliveries: Vec<(String, Delivery)>,
}

impl Pending {
    /// Events batched or in flight, roughly (records in flight count once).
    pub fn len(&self) -> usize {
        self.batch.len() + self.deliveries.len()
    }

    /// True when nothing awaits production or delivery.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.deliveries.is_empty()
    }
}
