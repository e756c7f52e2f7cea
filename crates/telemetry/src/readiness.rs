//! What `/readyz` reports: the dependencies as the service's own connections last found them
//! (Redis, the broker, the producer's deliveries), each loop the service runs going round, and
//! not draining. Every problem is named in words, so a 503 says which.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Shared readiness state. Cheap to clone; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started_ms: i64,
    /// Dependency → what is wrong with it now (absent: fine).
    problems: Mutex<BTreeMap<&'static str, String>>,
    loops: Mutex<Vec<LoopTicker>>,
    /// The loop [`Readiness::tick`] ticks, if the service has one it calls its main loop.
    main: Option<LoopTicker>,
    /// False until the service has set up what readiness watches ([`Readiness::set_started`]).
    started: AtomicBool,
    draining: AtomicBool,
}

/// One loop readiness watches: ready once it has gone round, and while its last round is more
/// recent than its stale bound. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LoopTicker(Arc<LoopState>);

#[derive(Debug)]
struct LoopState {
    name: &'static str,
    stale_ms: i64,
    /// Last round (ms since the epoch); 0 before the first.
    last_ms: AtomicI64,
}

/// A dependency probed from outside the service's work: Redis.
pub const REDIS: &str = "redis";
/// The broker.
pub const KAFKA: &str = "kafka";
/// The producer's deliveries.
pub const PRODUCER: &str = "producer";

impl LoopTicker {
    /// The loop went round (or is waiting for work it has every reason to expect).
    pub fn tick(&self) {
        self.0.last_ms.store(crate::now_ms(), Ordering::Relaxed);
    }
}

impl Readiness {
    /// New state, not ready until Redis and the broker have been probed. With `main_loop_stale_ms`
    /// above 0 a loop named "main loop" is watched ([`Readiness::tick`]), and its first round
    /// says the service has started; without, the service names its loops with
    /// [`Readiness::watch_loop`] and says when it has started ([`Readiness::set_started`]).
    pub fn new(main_loop_stale_ms: i64) -> Self {
        let problems =
            BTreeMap::from([(REDIS, "redis not probed yet".to_string()), (KAFKA, "kafka not probed yet".to_string())]);
        let main = (main_loop_stale_ms > 0).then(|| new_loop("main loop", main_loop_stale_ms));
        Self {
            inner: Arc::new(Inner {
                started_ms: crate::now_ms(),
                problems: Mutex::new(problems),
                loops: Mutex::new(main.iter().cloned().collect()),
                started: AtomicBool::new(main.is_some()),
                main,
                draining: AtomicBool::new(false),
            }),
        }
    }

    /// Watches a loop named `name` (e.g. "timer sweep"): the service is not ready until it goes
    /// round, nor when it has not for `stale_ms`.
    pub fn watch_loop(&self, name: &'static str, stale_ms: i64) -> LoopTicker {
        let ticker = new_loop(name, stale_ms);
        self.inner.loops.lock().unwrap_or_else(|e| e.into_inner()).push(ticker.clone());
        ticker
    }

    /// Records what the last probe of `dependency` ([`REDIS`], [`KAFKA`], [`PRODUCER`]) found
    /// wrong, or `None` when it answered.
    pub fn set_problem(&self, dependency: &'static str, problem: Option<String>) {
        let mut problems = self.inner.problems.lock().unwrap_or_else(|e| e.into_inner());
        match problem {
            Some(p) => problems.insert(dependency, p),
            None => problems.remove(dependency),
        };
    }

    /// The service has set up its work and the loops readiness watches.
    pub fn set_started(&self) {
        self.inner.started.store(true, Ordering::Relaxed);
    }

    /// Marks the service as draining: readiness turns false first, before work stops.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// Ticks the main loop (a no-op for a service that watches none by that name).
    pub fn tick(&self) {
        if let Some(main) = &self.inner.main {
            main.tick();
        }
    }

    /// How long ago the stalest watched loop last went round, ms (since start if it never
    /// did; 0 for a service without loops).
    pub fn loop_tick_age_ms(&self) -> i64 {
        let now = crate::now_ms();
        let loops = self.inner.loops.lock().unwrap_or_else(|e| e.into_inner());
        loops.iter().map(|l| now - l.last_or(self.inner.started_ms)).max().unwrap_or(0)
    }

    /// The reasons the service is not ready; empty when ready.
    pub fn problems(&self) -> Vec<String> {
        let now = crate::now_ms();
        let mut out: Vec<String> =
            self.inner.problems.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        if !self.inner.started.load(Ordering::Relaxed) {
            out.push("starting".to_string());
        }
        for l in self.inner.loops.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let last = l.0.last_ms.load(Ordering::Relaxed);
            if last == 0 {
                out.push(format!("{} not started", l.0.name));
            } else if now - last > l.0.stale_ms {
                out.push(format!("{} stalled: last went round {:.1} s ago", l.0.name, (now - last) as f64 / 1000.0));
            }
        }
        if self.inner.draining.load(Ordering::Relaxed) {
            out.push("draining".to_string());
        }
        out
    }
}

impl LoopTicker {
    fn last_or(&self, started_ms: i64) -> i64 {
        match self.0.last_ms.load(Ordering::Relaxed) {
            0 => started_ms,
            last => last,
        }
    }
}

fn new_loop(name: &'static str, stale_ms: i64) -> LoopTicker {
    LoopTicker(Arc::new(LoopState { name, stale_ms, last_ms: AtomicI64::new(0) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_until_it_clears() {
        let r = Readiness::new(0);
        assert_eq!(r.problems(), ["kafka not probed yet", "redis not probed yet", "starting"]);
        r.set_problem(REDIS, None);
        r.set_problem(KAFKA, None);
        assert_eq!(r.problems(), ["starting"]);
        r.set_started();
        assert!(r.problems().is_empty(), "a service without loops is ready once probed and started");
        let sweep = r.watch_loop("timer sweep", 60_000);
        assert_eq!(r.problems(), ["timer sweep not started"]);
        sweep.tick();
        assert!(r.problems().is_empty());
        r.set_problem(PRODUCER, Some("kafka deliveries failing".into()));
        r.set_draining();
        assert_eq!(r.problems(), ["kafka deliveries failing", "draining"]);
    }

    #[test]
    fn a_loop_that_stops_going_round_is_stalled() {
        let r = Readiness::new(0);
        r.set_problem(REDIS, None);
        r.set_problem(KAFKA, None);
        r.set_started();
        let stuck = r.watch_loop("consume loop", -1);
        stuck.tick();
        let problems = r.problems();
        assert!(problems.len() == 1 && problems[0].starts_with("consume loop stalled"), "{problems:?}");
        let main = Readiness::new(-5);
        main.tick();
        assert_eq!(main.loop_tick_age_ms(), 0, "no main loop watched with a bound of 0 or less");
    }
}
