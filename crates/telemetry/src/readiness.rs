//! What `/readyz` reports: dependencies reachable, main loop alive, not draining.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// Shared readiness flags. Cheap to clone; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    redis: AtomicBool,
    kafka: AtomicBool,
    draining: AtomicBool,
    loop_tick_ms: AtomicI64,
    loop_stale_ms: i64,
}

impl Readiness {
    /// New flags; the main loop counts as stuck if it has not ticked for `loop_stale_ms`.
    pub fn new(loop_stale_ms: i64) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: AtomicBool::new(false),
                kafka: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                loop_tick_ms: AtomicI64::new(0),
                loop_stale_ms,
            }),
        }
    }

    /// Records whether Redis answered the last probe.
    pub fn set_redis(&self, ok: bool) {
        self.inner.redis.store(ok, Ordering::Relaxed);
    }

    /// Records whether the broker answered the last probe.
    pub fn set_kafka(&self, ok: bool) {
        self.inner.kafka.store(ok, Ordering::Relaxed);
    }

    /// Marks the service as draining: readiness turns false first, before work stops.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// Called by the main loop on each iteration.
    pub fn tick(&self) {
        self.inner.loop_tick_ms.store(crate::now_ms(), Ordering::Relaxed);
    }

    /// How long ago the main loop last ticked, ms (since start if it never did).
    pub fn loop_tick_age_ms(&self) -> i64 {
        crate::now_ms() - self.inner.loop_tick_ms.load(Ordering::Relaxed)
    }

    /// The reasons the service is not ready; empty when ready.
    pub fn problems(&self) -> Vec<&'static str> {
        let i = &self.inner;
        let mut out = Vec::new();
        if !i.redis.load(Ordering::Relaxed) {
            out.push("redis unreachable");
        }
        if !i.kafka.load(Ordering::Relaxed) {
            out.push("kafka unreachable");
        }
        if crate::now_ms() - i.loop_tick_ms.load(Ordering::Relaxed) > i.loop_stale_ms {
            out.push("main loop not running");
        }
        if i.draining.load(Ordering::Relaxed) {
            out.push("draining");
        }
        out
    }
}
