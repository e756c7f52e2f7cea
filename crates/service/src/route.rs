//! Where a task goes: a partition of its lane's topic that a live worker owns. A dead worker
//! keeps its partitions until the consumer group expires it (the session timeout, then a
//! rebalance); tasks produced there meanwhile would wait. Twice a second this refreshes, per
//! lane, the partitions whose owner beat within two thirds of the liveness TTL
//! (`baton:owners:<lane>`, `baton:workers`) — so a silent worker leaves the routes before the
//! reaper declares it dead and re-dispatches its runs — and the producer routes each task among
//! them by its run id. With none known, the key decides.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use baton_bus::{Route, Topics};
use baton_config::Config;
use baton_store::Store;
use tokio_util::sync::CancellationToken;

/// Starts the refresher (until `stop`) and returns the producer's route.
pub fn spawn(config: &Config, store: Store, stop: CancellationToken) -> Route {
    let live: Arc<RwLock<HashMap<String, Vec<i32>>>> = Arc::default();
    let topics = Topics::new(&config.kafka.topic_prefix);
    let lanes: Vec<(String, String)> = config.runs.lanes.iter().map(|l| (l.clone(), topics.tasks(l))).collect();
    // Stricter than the reaper's test of death; a slow live worker left out only shifts tasks.
    let ttl = config.worker.liveness_ttl_ms * 2 / 3;
    let table = live.clone();
    tokio::spawn(async move {
        loop {
            for (lane, topic) in &lanes {
                match store.live_partitions(lane, ttl).await {
                    Ok(partitions) => {
                        table.write().unwrap_or_else(|e| e.into_inner()).insert(topic.clone(), partitions);
                    }
                    Err(e) => tracing::debug!(lane, error = %e, "cannot read live partitions; tasks go by key"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
    Arc::new(move |topic: &str, key: &str| {
        let table = live.read().unwrap_or_else(|e| e.into_inner());
        let partitions = table.get(topic).filter(|p| !p.is_empty())?;
        Some(partitions[stable_index(key, partitions.len())])
    })
}

/// A stable choice among `n` for a key (FNV-1a).
fn stable_index(key: &str, n: usize) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_picks_the_same_partition() {
        let a = stable_index("01a2-run", 8);
        assert_eq!(a, stable_index("01a2-run", 8));
        assert!(a < 8);
        let spread: std::collections::HashSet<usize> = (0..100).map(|i| stable_index(&format!("run-{i}"), 4)).collect();
        assert_eq!(spread.len(), 4);
    }
}
