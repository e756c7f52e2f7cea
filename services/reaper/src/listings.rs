//! The listings sweep: keeps the sorted sets that list runs (a tenant's runs, the active sets
//! behind the caps, approval requests, the dead-letter index) free of runs that ended or expired,
//! so no key grows without bound. Every second it takes one step of a `SCAN` for listing keys
//! and checks a few pages of them, round robin (`baton_store::Store::sweep_listing`).

use std::collections::BTreeMap;
use std::time::Duration;

use baton_store::Store;
use tokio_util::sync::CancellationToken;

/// Keys looked at per `SCAN` step.
const SCAN_COUNT: usize = 1_000;
/// Entries checked per page.
const PAGE: usize = 256;
/// Pages checked per second.
const PAGES_PER_TICK: usize = 8;

/// Sweeps listings until `stop`, while this reaper leads; runs are kept `retention_ms`.
pub async fn run(
    store: Store,
    retention_ms: u64,
    leading: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) {
    // Listing key → rank to go on from.
    let mut listings: BTreeMap<String, usize> = BTreeMap::new();
    let mut scan = baton_store::ListingScan::default();
    let mut next_key: Option<String> = None;
    loop {
        if !leading.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = stop.cancelled() => return,
            }
        }
        match store.scan_listings(scan, SCAN_COUNT).await {
            Ok((next, found)) => {
                for key in found {
                    listings.entry(key).or_insert(0);
                }
                scan = next;
            }
            Err(e) => tracing::debug!(error = %e, "cannot scan for listings"),
        }
        for _ in 0..PAGES_PER_TICK.min(listings.len()) {
            let key = match next_key.take().filter(|k| listings.contains_key(k)) {
                Some(k) => k,
                None => match listings.keys().next() {
                    Some(k) => k.clone(),
                    None => break,
                },
            };
            let from = listings.get(&key).copied().unwrap_or(0);
            let cutoff = baton_core::run_id::creation_cutoff_ms(baton_telemetry::now_ms(), retention_ms);
            match store.sweep_listing(&key, from, PAGE, cutoff).await {
                // Nothing there from the start: the listing is gone (empty sets are deleted).
                Ok((0, _, _)) if from == 0 => {
                    listings.remove(&key);
                }
                Ok((_, removed, next)) => {
                    if removed > 0 {
                        metrics::counter!(crate::metric_definitions::LISTINGS_SWEPT).increment(removed as u64);
                    }
                    listings.insert(key.clone(), next);
                }
                Err(e) => tracing::debug!(key, error = %e, "cannot sweep listing"),
            }
            // Round robin: the next key after this one.
            let after = (std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded);
            next_key = listings.range::<String, _>(after).next().map(|(k, _)| k.clone());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => return,
        }
    }
}
