//! The client under [`crate::Producer`]: rdkafka's `BaseProducer` with a delivery callback that
//! completes a oneshot per record, and one polling thread that serves the callbacks. (rdkafka's
//! own `FutureProducer` polls in 100 ms slices whose last millisecond rounds down to a zero
//! timeout and spins: about 1 % of a core for every idle process.)

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};
use tokio::sync::oneshot;

/// A record's delivery report, to be awaited.
pub type Delivery = oneshot::Receiver<Result<(), KafkaError>>;

/// Completes each record's oneshot with its delivery report.
pub struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<oneshot::Sender<Result<(), KafkaError>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, report: Self::DeliveryOpaque) {
        let _ = report.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// The producer client; its polling thread ends when the last handle is dropped.
pub type Client = Arc<BaseProducer<Reports>>;

/// Starts the polling thread of `client`.
pub fn spawn_poller(client: &Client) {
    let weak: Weak<BaseProducer<Reports>> = Arc::downgrade(client);
    let spawned = std::thread::Builder::new().name("baton-producer-poll".into()).spawn(move || {
        // Each poll returns at every report, or after a second without one.
        while let Some(client) = weak.upgrade() {
            client.poll(Duration::from_secs(1));
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the producer's polling thread");
    }
}

/// One record to produce.
pub struct Outgoing<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Key (the run id).
    pub key: &'a str,
    /// Payload (a protobuf).
    pub payload: &'a [u8],
    /// Headers.
    pub headers: OwnedHeaders,
    /// A partition, or the key's.
    pub partition: Option<i32>,
}

/// Hands `out` to the client and returns its delivery. A full queue is waited out (backpressure)
/// for up to `queue_timeout`.
pub async fn enqueue(client: &Client, out: Outgoing<'_>, queue_timeout: Duration) -> Result<Delivery, KafkaError> {
    let started = Instant::now();
    let mut headers = Some(out.headers);
    loop {
        let (tx, rx) = oneshot::channel();
        let mut record = BaseRecord::with_opaque_to(out.topic, Box::new(tx)).key(out.key).payload(out.payload);
        if let Some(h) = headers.take() {
            record = record.headers(h);
        }
        if let Some(p) = out.partition {
            record = record.partition(p);
        }
        match client.send(record) {
            Ok(()) => return Ok(rx),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if started.elapsed() < queue_timeout =>
            {
                headers = back.headers;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits for a delivery report.
pub async fn delivered(delivery: Delivery) -> Result<(), KafkaError> {
    delivery.await.unwrap_or(Err(KafkaError::Canceled))
}

/// How long a failed delivery with no success after it keeps the producer unhealthy.
const FAILURE_REMEMBERED_MS: i64 = 60_000;

/// The outcome of the producer's latest deliveries: failing while the latest one failed (and
/// recently), healthy again with the next success.
#[derive(Debug, Default)]
pub struct DeliveryHealth {
    last_ok_ms: AtomicI64,
    last_failed_ms: AtomicI64,
    last_error: Mutex<String>,
}

impl DeliveryHealth {
    /// Records a delivery's outcome.
    pub fn record(&self, outcome: &Result<(), KafkaError>) {
        let now = baton_telemetry::now_ms();
        match outcome {
            Ok(()) => self.last_ok_ms.store(now, Ordering::Relaxed),
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e.to_string();
                self.last_failed_ms.store(now, Ordering::Relaxed);
            }
        }
    }

    /// What is wrong, if the latest delivery failed within the last minute.
    pub fn problem(&self, now_ms: i64) -> Option<String> {
        let (ok, failed) = (self.last_ok_ms.load(Ordering::Relaxed), self.last_failed_ms.load(Ordering::Relaxed));
        if failed > ok && now_ms - failed < FAILURE_REMEMBERED_MS {
            let error = self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Some(format!("kafka deliveries failing: {error}"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_recent_failure_makes_the_producer_unhealthy_until_a_success() {
        let health = DeliveryHealth::default();
        let now = baton_telemetry::now_ms();
        assert_eq!(health.problem(now), None);
        health.record(&Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)));
        assert!(health.problem(now + 1).is_some_and(|p| p.starts_with("kafka deliveries failing")));
        assert_eq!(health.problem(now + FAILURE_REMEMBERED_MS + 1), None, "forgotten after a minute");
        std::thread::sleep(Duration::from_millis(2));
        health.record(&Ok(()));
        assert_eq!(health.problem(baton_telemetry::now_ms()), None);
    }
}
