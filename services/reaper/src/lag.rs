//! Consumer lag of every lane's worker group, read from the broker every
//! `reaper.lag_sample_ms` and exported as `baton_lane_consumer_lag{lane,partition}`; each lane's
//! total goes to Redis too, where the gateways' admission control reads it (`lane.max_queued`).
//! It runs beside the sweep loop so a slow broker never delays recovery.

use std::time::Duration;

use baton_bus::LagProbe;
use baton_config::Config;
use tokio_util::sync::CancellationToken;

use crate::metric_definitions as m;

/// Samples until `stop` fires; returns at once when sampling is off (`lag_sample_ms = 0`).
pub async fn sample_lanes(
    config: Config,
    store: baton_store::Store,
    leading: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) {
    let every = config.reaper.lag_sample_ms;
    if every == 0 {
        return;
    }
    let mut probes = Vec::new();
    for lane in &config.runs.lanes {
        match LagProbe::new(&config.kafka, lane) {
            Ok(probe) => probes.push((lane.clone(), std::sync::Arc::new(probe))),
            Err(e) => tracing::warn!(lane = %lane, error = %e, "cannot read this lane's consumer lag"),
        }
    }
    let timeout = Duration::from_millis(every.clamp(500, 5_000));
    loop {
        // Only the leading reaper reads the broker; the others wait their turn.
        let probes_now = if leading.load(std::sync::atomic::Ordering::Relaxed) { probes.as_slice() } else { &[] };
        for (lane, probe) in probes_now {
            let probe = probe.clone();
            match tokio::task::spawn_blocking(move || probe.sample(timeout)).await {
                Ok(Ok(lags)) => {
                    let total: i64 = lags.iter().map(|l| l.lag).sum();
                    for l in lags {
                        let partition = l.partition.to_string();
                        metrics::gauge!(m::LANE_LAG, "lane" => lane.clone(), "partition" => partition)
                            .set(l.lag as f64);
                    }
                    if let Err(e) = store.set_lane_lag(lane, total.max(0) as u64, baton_telemetry::now_ms()).await {
                        tracing::debug!(lane = %lane, error = %e, "cannot record the lane's lag for admission");
                    }
                }
                Ok(Err(e)) => tracing::debug!(lane = %lane, error = %e, "cannot read consumer lag"),
                Err(e) => tracing::debug!(lane = %lane, error = %e, "lag probe panicked"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(every)) => {}
            _ = stop.cancelled() => return,
        }
    }
}
