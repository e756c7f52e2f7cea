//! Pausing a consumer while it has nothing to do. A consumer polling an empty topic keeps the
//! broker busy with fetches (with brokers that answer a fetch only when its wait expires, a
//! 10 ms wait is ~100 fetches a second per consumer). After `idle_after` without a record, every
//! assigned partition is paused; a wake-up for one of the consumer's topics (see
//! `baton_store::subscribe_wakes`) resumes them at once, and so does a new assignment. As a safety
//! net against a lost wake-up, paused partitions are resumed briefly every `recheck_every`.
//! An operator's lane pause *holds* the consumer: paused, with no wake-up or recheck resuming
//! it, until the hold is lifted; records stay on the topic. Nothing here waits on the broker on
//! the caller's thread: the one broker round trip (committed offsets) runs on a blocking thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};

use crate::BatonConsumer;

/// Pause state of one consumer.
pub struct IdlePause {
    consumer: Arc<BatonConsumer>,
    idle_after: Duration,
    recheck_every: Duration,
    last_activity: Instant,
    paused_since: Option<Instant>,
    held: bool,
    generation: u64,
    resume_at: ResumeAt,
}

/// Where each paused partition resumes: its position, or its committed offset if nothing was
/// consumed from it since its assignment (read in the background; until it arrives such a
/// partition resumes where librdkafka stands).
#[derive(Clone, Default)]
struct ResumeAt {
    at: Arc<Mutex<TopicPartitionList>>,
    /// Counts pauses: a committed-offset read that finishes after a later pause is dropped.
    pauses: Arc<AtomicU64>,
}

/// How long a safety recheck keeps the partitions resumed.
const RECHECK_FOR: Duration = Duration::from_millis(100);

impl IdlePause {
    /// Pauses `consumer` after `idle_after` without records; rechecks every `recheck_every`
    /// while paused.
    pub fn new(consumer: Arc<BatonConsumer>, idle_after: Duration, recheck_every: Duration) -> Self {
        Self {
            consumer,
            idle_after,
            recheck_every,
            last_activity: Instant::now(),
            paused_since: None,
            held: false,
            generation: 0,
            resume_at: ResumeAt::default(),
        }
    }

    /// A record arrived, or a wake-up for one of the consumer's topics: resume if paused.
    pub fn active(&mut self) {
        self.last_activity = Instant::now();
        if self.held {
            return;
        }
        if self.paused_since.take().is_some() {
            self.resume_at.resume(&self.consumer);
        }
    }

    /// True while the partitions are paused.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Holds the consumer paused (`held`) or lifts the hold, resuming where it stood.
    pub fn hold(&mut self, held: bool) {
        if held == self.held {
            return;
        }
        self.held = held;
        if held {
            if self.paused_since.is_none() {
                self.resume_at.pause(&self.consumer);
                self.paused_since = Some(Instant::now());
            }
            tracing::info!("lane paused by an operator: consumer held");
        } else {
            self.paused_since = None;
            self.last_activity = Instant::now();
            self.resume_at.resume(&self.consumer);
            tracing::info!("lane resumed by an operator: consumer released");
        }
    }

    /// True while an operator's lane pause holds the consumer.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Pauses or rechecks as due. `may_pause` is false while the caller still has work queued.
    pub fn tick(&mut self, may_pause: bool) {
        let generation = self.consumer.context().generation();
        if generation != self.generation && self.held {
            // A rebalance while held: the new assignment is fetching; pause it too.
            self.generation = generation;
            self.resume_at.pause(&self.consumer);
            return;
        }
        if self.held {
            return;
        }
        if generation != self.generation {
            // A new assignment: what it added is fetching, and what it kept may be paused (an
            // incremental assignment keeps the partitions' state); resume and treat it as fresh
            // activity.
            self.generation = generation;
            if self.paused_since.take().is_some() {
                self.resume_at.resume(&self.consumer);
            }
            self.last_activity = Instant::now();
            return;
        }
        match self.paused_since {
            None if may_pause && self.last_activity.elapsed() >= self.idle_after => {
                self.resume_at.pause(&self.consumer);
                self.paused_since = Some(Instant::now());
            }
            Some(since) if since.elapsed() >= self.recheck_every => {
                // Resume for a moment; `active` or the next idle period pauses again.
                self.resume_at.resume(&self.consumer);
                self.paused_since = None;
                self.last_activity = Instant::now() - self.idle_after + RECHECK_FOR;
            }
            _ => {}
        }
    }
}

impl ResumeAt {
    /// Pauses every assigned partition and notes where each should resume.
    fn pause(&self, consumer: &Arc<BatonConsumer>) {
        let pause = self.pauses.fetch_add(1, Ordering::SeqCst) + 1;
        let Ok(assignment) = consumer.assignment() else {
            self.set(TopicPartitionList::new());
            return;
        };
        if assignment.count() == 0 {
            self.set(assignment);
            return;
        }
        if let Err(e) = consumer.pause(&assignment) {
            tracing::warn!(error = %e, "cannot pause the consumer");
        }
        tracing::debug!(partitions = assignment.count(), "consumer paused");
        let at = consumer.position().unwrap_or_else(|_| TopicPartitionList::new());
        let unpositioned = at.elements().iter().any(|e| !matches!(e.offset(), Offset::Offset(_)));
        self.set(at);
        if !unpositioned {
            return;
        }
        // A partition nothing was consumed from has no position: its committed offset then (one
        // broker round trip per idle period, which may wait as long as the broker is away).
        let (consumer, this) = (consumer.clone(), self.clone());
        tokio::task::spawn_blocking(move || {
            let Ok(committed) = consumer.committed_offsets(assignment, Duration::from_millis(500)) else { return };
            if this.pauses.load(Ordering::SeqCst) != pause {
                return; // Resumed and paused again meanwhile: that pause noted its own.
            }
            let mut at = this.at.lock().unwrap_or_else(|e| e.into_inner());
            for e in committed.elements() {
                let known = at
                    .find_partition(e.topic(), e.partition())
                    .is_some_and(|p| matches!(p.offset(), Offset::Offset(_)));
                if !known {
                    let _ = at.set_partition_offset(e.topic(), e.partition(), e.offset());
                }
            }
        });
    }

    fn set(&self, at: TopicPartitionList) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Resumes every assigned partition. librdkafka notices a resumed partition only at its
    /// broker thread's next wakeup (up to a second); a seek to where it stands is served at once.
    fn resume(&self, consumer: &BatonConsumer) {
        let Ok(assignment) = consumer.assignment() else { return };
        if assignment.count() == 0 {
            return;
        }
        if let Err(e) = consumer.resume(&assignment) {
            tracing::warn!(error = %e, "cannot resume the consumer");
        }
        tracing::debug!(partitions = assignment.count(), "consumer resumed");
        let at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        for e in at.elements() {
            if matches!(e.offset(), Offset::Offset(_)) && assignment.find_partition(e.topic(), e.partition()).is_some()
            {
                let _ = consumer.seek(e.topic(), e.partition(), e.offset(), Duration::from_millis(0));
            }
        }
    }
}
