//! Pausing a consumer while it has nothing to do. A consumer polling an empty topic keeps the
//! broker busy with fetches (with brokers that answer a fetch only when its wait expires, a
//! 10 ms wait is ~100 fetches a second per consumer). After `idle_after` without a record, every
//! assigned partition is paused; a wake-up for one of the consumer's topics (see
//! `baton_store::subscribe_wakes`) resumes them at once, and so does a rebalance. As a safety
//! net against a lost wake-up, paused partitions are resumed briefly every `recheck_every`.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::Offset;

use crate::BatonConsumer;

/// Pause state of one consumer.
pub struct IdlePause {
    idle_after: Duration,
    recheck_every: Duration,
    last_activity: Instant,
    paused_since: Option<Instant>,
    generation: u64,
}

/// How long a safety recheck keeps the partitions resumed.
const RECHECK_FOR: Duration = Duration::from_millis(100);

impl IdlePause {
    /// Pauses after `idle_after` without records; rechecks every `recheck_every` while paused.
    pub fn new(idle_after: Duration, recheck_every: Duration) -> Self {
        Self { idle_after, recheck_every, last_activity: Instant::now(), paused_since: None, generation: 0 }
    }

    /// A record arrived, or a wake-up for one of the consumer's topics: resume if paused.
    pub fn active(&mut self, consumer: &BatonConsumer) {
        self.last_activity = Instant::now();
        if self.paused_since.take().is_some() {
            set_paused(consumer, false);
        }
    }

    /// True while the partitions are paused.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Pauses or rechecks as due. `may_pause` is false while the caller still has work queued.
    pub fn tick(&mut self, consumer: &BatonConsumer, may_pause: bool) {
        let generation = consumer.context().generation();
        if generation != self.generation {
            // A rebalance: the new assignment is fetching; treat it as fresh activity.
            self.generation = generation;
            self.paused_since = None;
            self.last_activity = Instant::now();
            return;
        }
        match self.paused_since {
            None if may_pause && self.last_activity.elapsed() >= self.idle_after => {
                set_paused(consumer, true);
                self.paused_since = Some(Instant::now());
            }
            Some(since) if since.elapsed() >= self.recheck_every => {
                // Resume for a moment; `active` or the next idle period pauses again.
                set_paused(consumer, false);
                self.paused_since = None;
                self.last_activity = Instant::now() - self.idle_after + RECHECK_FOR;
            }
            _ => {}
        }
    }
}

fn set_paused(consumer: &BatonConsumer, paused: bool) {
    let Ok(assignment) = consumer.assignment() else { return };
    if assignment.count() == 0 {
        return;
    }
    let result = if paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) };
    match result {
        Ok(()) => tracing::debug!(paused, partitions = assignment.count(), "consumer pause state changed"),
        Err(e) => tracing::warn!(paused, error = %e, "cannot change the consumer's pause state"),
    }
    if !paused {
        // librdkafka notices a resumed partition only at its broker thread's next wakeup (up to
        // a second); a seek to where it stands is served at once and starts the fetch now.
        if let Ok(positions) = consumer.position() {
            for e in positions.elements() {
                // Only to a concrete position: a partition not consumed since its assignment has
                // none, and is left to resume by itself (within a second).
                if let Offset::Offset(_) = e.offset() {
                    let _ = consumer.seek(e.topic(), e.partition(), e.offset(), Duration::from_millis(0));
                }
            }
        }
    }
}
