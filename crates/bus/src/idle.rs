//! Pausing a consumer while it has nothing to do. A consumer polling an empty topic keeps the
//! broker busy with fetches (with brokers that answer a fetch only when its wait expires, a
//! 10 ms wait is ~100 fetches a second per consumer). After `idle_after` without a record, every
//! assigned partition is paused; a wake-up for one of the consumer's topics (see
//! `baton_store::subscribe_wakes`) resumes them at once, and so does a rebalance. As a safety
//! net against a lost wake-up, paused partitions are resumed briefly every `recheck_every`.
//! An operator's lane pause *holds* the consumer: paused, with no wake-up or recheck resuming
//! it, until the hold is lifted; records stay on the topic.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};

use crate::BatonConsumer;

/// Pause state of one consumer.
pub struct IdlePause {
    idle_after: Duration,
    recheck_every: Duration,
    last_activity: Instant,
    paused_since: Option<Instant>,
    held: bool,
    generation: u64,
    /// Where each paused partition resumes: its position, or its committed offset if nothing was
    /// consumed from it since its assignment.
    resume_at: TopicPartitionList,
}

/// How long a safety recheck keeps the partitions resumed.
const RECHECK_FOR: Duration = Duration::from_millis(100);

impl IdlePause {
    /// Pauses after `idle_after` without records; rechecks every `recheck_every` while paused.
    pub fn new(idle_after: Duration, recheck_every: Duration) -> Self {
        Self {
            idle_after,
            recheck_every,
            last_activity: Instant::now(),
            paused_since: None,
            held: false,
            generation: 0,
            resume_at: TopicPartitionList::new(),
        }
    }

    /// A record arrived, or a wake-up for one of the consumer's topics: resume if paused.
    pub fn active(&mut self, consumer: &BatonConsumer) {
        self.last_activity = Instant::now();
        if self.held {
            return;
        }
        if self.paused_since.take().is_some() {
            resume(consumer, &self.resume_at);
        }
    }

    /// True while the partitions are paused.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Holds the consumer paused (`held`) or lifts the hold, resuming where it stood.
    pub fn hold(&mut self, consumer: &BatonConsumer, held: bool) {
        if held == self.held {
            return;
        }
        self.held = held;
        if held {
            if self.paused_since.is_none() {
                self.resume_at = pause(consumer);
                self.paused_since = Some(Instant::now());
            }
            tracing::info!("lane paused by an operator: consumer held");
        } else {
            self.paused_since = None;
            self.last_activity = Instant::now();
            resume(consumer, &self.resume_at);
            tracing::info!("lane resumed by an operator: consumer released");
        }
    }

    /// True while an operator's lane pause holds the consumer.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Pauses or rechecks as due. `may_pause` is false while the caller still has work queued.
    pub fn tick(&mut self, consumer: &BatonConsumer, may_pause: bool) {
        let generation = consumer.context().generation();
        if generation != self.generation && self.held {
            // A rebalance while held: the new assignment is fetching; pause it too.
            self.generation = generation;
            self.resume_at = pause(consumer);
            return;
        }
        if self.held {
            return;
        }
        if generation != self.generation {
            // A rebalance: the new assignment is fetching; treat it as fresh activity.
            self.generation = generation;
            self.paused_since = None;
            self.last_activity = Instant::now();
            return;
        }
        match self.paused_since {
            None if may_pause && self.last_activity.elapsed() >= self.idle_after => {
                self.resume_at = pause(consumer);
                self.paused_since = Some(Instant::now());
            }
            Some(since) if since.elapsed() >= self.recheck_every => {
                // Resume for a moment; `active` or the next idle period pauses again.
                resume(consumer, &self.resume_at);
                self.paused_since = None;
                self.last_activity = Instant::now() - self.idle_after + RECHECK_FOR;
            }
            _ => {}
        }
    }
}

/// Pauses every assigned partition; returns where each should resume.
fn pause(consumer: &BatonConsumer) -> TopicPartitionList {
    let Ok(assignment) = consumer.assignment() else { return TopicPartitionList::new() };
    if assignment.count() == 0 {
        return assignment;
    }
    if let Err(e) = consumer.pause(&assignment) {
        tracing::warn!(error = %e, "cannot pause the consumer");
    }
    tracing::debug!(partitions = assignment.count(), "consumer paused");
    let mut at = consumer.position().unwrap_or_else(|_| TopicPartitionList::new());
    let unpositioned = at.elements().iter().any(|e| !matches!(e.offset(), Offset::Offset(_)));
    if unpositioned {
        // A partition nothing was consumed from has no position: its committed offset then
        // (one broker round trip, once per idle period).
        if let Ok(committed) = consumer.committed_offsets(assignment, Duration::from_millis(500)) {
            for e in committed.elements() {
                let known = at
                    .find_partition(e.topic(), e.partition())
                    .is_some_and(|p| matches!(p.offset(), Offset::Offset(_)));
                if !known {
                    let _ = at.set_partition_offset(e.topic(), e.partition(), e.offset());
                }
            }
        }
    }
    at
}

/// Resumes every assigned partition. librdkafka notices a resumed partition only at its broker
/// thread's next wakeup (up to a second); a seek to where it stands is served at once.
fn resume(consumer: &BatonConsumer, at: &TopicPartitionList) {
    let Ok(assignment) = consumer.assignment() else { return };
    if assignment.count() == 0 {
        return;
    }
    if let Err(e) = consumer.resume(&assignment) {
        tracing::warn!(error = %e, "cannot resume the consumer");
    }
    tracing::debug!(partitions = assignment.count(), "consumer resumed");
    for e in at.elements() {
        if matches!(e.offset(), Offset::Offset(_)) && assignment.find_partition(e.topic(), e.partition()).is_some() {
            let _ = consumer.seek(e.topic(), e.partition(), e.offset(), Duration::from_millis(0));
        }
    }
}
