//! The worker's permits (`worker.concurrency` claimed runs at once) and when each holder took
//! its permit, so a consume loop waiting for a permit can tell busy from stuck: it is busy, and
//! ready, while no holder has kept its permit longer than a slice can take.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// What a hand-on may add to a slice: the slice's events and its next task each wait up to the
/// producer's delivery timeout (30 s), plus the Redis writes.
const HAND_ON_BOUND: Duration = Duration::from_secs(70);

/// The permits and their holders.
pub struct Permits {
    semaphore: Arc<Semaphore>,
    held: Arc<Mutex<BTreeMap<u64, Instant>>>,
    next: AtomicU64,
    bound: Duration,
}

/// One held permit; given back when dropped.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    held: Arc<Mutex<BTreeMap<u64, Instant>>>,
    id: u64,
}

impl Permits {
    /// `concurrency` permits for slices of at most `slice_max` plus one step of `step_timeout`
    /// (a slice ends at a step boundary) and a hand-on.
    pub fn new(concurrency: usize, slice_max: Duration, step_timeout: Duration) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(concurrency)),
            held: Arc::default(),
            next: AtomicU64::new(0),
            bound: slice_max + step_timeout + HAND_ON_BOUND,
        }
    }

    /// Waits for a permit.
    pub async fn acquire(&self) -> Result<Permit, AcquireError> {
        let permit = self.semaphore.clone().acquire_owned().await?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Instant::now());
        Ok(Permit { _permit: permit, held: self.held.clone(), id })
    }

    /// True while no holder has kept its permit longer than a slice can take.
    pub fn holders_within_bound(&self) -> bool {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // Ids grow with time: the first entry is the oldest holder.
        held.values().next().is_none_or(|since| since.elapsed() <= self.bound)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_holder_past_the_bound_makes_the_wait_stuck_and_giving_back_clears_it() {
        let permits = Permits::new(1, Duration::ZERO, Duration::ZERO);
        assert!(permits.holders_within_bound());
        let held = permits.acquire().await.unwrap();
        assert!(permits.holders_within_bound(), "a fresh holder is within the bound");
        let stuck = Permits { bound: Duration::ZERO, ..Permits::new(1, Duration::ZERO, Duration::ZERO) };
        let _stuck = stuck.acquire().await.unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(!stuck.holders_within_bound());
        drop(held);
        assert!(permits.holders_within_bound());
        assert_eq!(permits.semaphore.available_permits(), 1, "the permit went back");
    }
}
