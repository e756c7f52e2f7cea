//! The operator switches a service holds: re-read from Redis every `switches.refresh_ms`, so a
//! change made through `AdminService` is in force on every worker and gateway within about a
//! second, without a restart. Until the first read succeeds, nothing is switched.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use baton_core::judge::Gates;
use baton_store::{Store, SwitchSetting};
use tokio_util::sync::CancellationToken;

/// Switch names, as stored and audited.
pub mod name {
    /// A tool an operator disabled.
    pub const TOOL_DISABLED: &str = "tool.disabled";
    /// A tool whose every call needs approval.
    pub const TOOL_REQUIRES_APPROVAL: &str = "tool.requires_approval";
    /// A lane whose dispatch is paused.
    pub const LANE_PAUSED: &str = "lane.paused";
    /// A tenant's cap on runs not yet ended.
    pub const TENANT_MAX_ACTIVE_RUNS: &str = "tenant.max_active_runs";
    /// A tenant's submits per second (its bucket holds twice that, at least one).
    pub const TENANT_SUBMIT_RATE: &str = "tenant.submit_rate";
    /// A lane's cap on runs not yet ended.
    pub const LANE_MAX_ACTIVE_RUNS: &str = "lane.max_active_runs";
    /// The consumer lag (task records queued) above which a lane refuses submits.
    pub const LANE_MAX_QUEUED: &str = "lane.max_queued";
    /// A lane's routing weight (overrides `[lanes.<name>] weight`; 0 is a rollback).
    pub const LANE_WEIGHT: &str = "lane.weight";
    /// The admission limits `SetLimit` changes, with what each applies to.
    pub const LIMITS: [(&str, &str); 4] = [
        (TENANT_MAX_ACTIVE_RUNS, "tenant"),
        (TENANT_SUBMIT_RATE, "tenant"),
        (LANE_MAX_ACTIVE_RUNS, "lane"),
        (LANE_MAX_QUEUED, "lane"),
    ];
}

/// What the switches say now.
#[derive(Debug, Clone, Default)]
pub struct SwitchState {
    /// Tool switches, as proposals are judged against them.
    pub gates: Gates,
    /// Lanes whose dispatch is paused.
    pub paused_lanes: std::collections::BTreeSet<String>,
    /// Tenants' caps on active runs.
    pub tenant_caps: BTreeMap<String, u32>,
    /// Tenants' submit rates (per second).
    pub tenant_rates: BTreeMap<String, u32>,
    /// Lanes' caps on active runs.
    pub lane_caps: BTreeMap<String, u32>,
    /// Lanes' queue limits (consumer lag, records).
    pub lane_queue_limits: BTreeMap<String, u64>,
    /// Lanes' routing weights set by an operator, by switch target (`<lane>` for the fleet's
    /// route, `<lane>@<route>` for a tenant's or an agent's).
    pub lane_weights: BTreeMap<String, u32>,
    /// The routes (tenants, `agent:<name>`) that have weights of their own.
    pub routes: std::collections::BTreeSet<String>,
    /// Each lane's consumer lag as the reaper last read it, and when (read with the switches).
    pub lane_lag: BTreeMap<String, (u64, i64)>,
    /// Every setting, as read.
    pub settings: Vec<SwitchSetting>,
}

impl SwitchState {
    /// Builds the state from the settings in force.
    pub fn from_settings(settings: Vec<SwitchSetting>) -> Self {
        let mut state = SwitchState::default();
        for s in &settings {
            let on = s.value == "true";
            match s.switch.as_str() {
                name::TOOL_DISABLED if on => {
                    state.gates.disabled.insert(s.target.clone());
                }
                name::TOOL_REQUIRES_APPROVAL if on => {
                    state.gates.approval.insert(s.target.clone());
                }
                name::LANE_PAUSED if on => {
                    state.paused_lanes.insert(s.target.clone());
                }
                name::TENANT_MAX_ACTIVE_RUNS => number(&mut state.tenant_caps, s),
                name::TENANT_SUBMIT_RATE => number(&mut state.tenant_rates, s),
                name::LANE_MAX_ACTIVE_RUNS => number(&mut state.lane_caps, s),
                name::LANE_MAX_QUEUED => number(&mut state.lane_queue_limits, s),
                name::LANE_WEIGHT => {
                    number(&mut state.lane_weights, s);
                    if let Some((_, route)) = s.target.split_once('@') {
                        state.routes.insert(route.to_string());
                    }
                }
                _ => {}
            }
        }
        state.settings = settings;
        state
    }
}

/// Records a numeric setting under its target (a value that does not parse is ignored).
fn number<T: std::str::FromStr>(into: &mut BTreeMap<String, T>, s: &SwitchSetting) {
    if let Ok(n) = s.value.parse() {
        into.insert(s.target.clone(), n);
    }
}

/// A service's live view of the switches.
#[derive(Default)]
pub struct LiveSwitches {
    state: RwLock<Arc<SwitchState>>,
}

impl LiveSwitches {
    /// The switches as last read.
    pub fn now(&self) -> Arc<SwitchState> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `lane`'s dispatch is paused.
    pub fn lane_paused(&self, lane: &str) -> bool {
        self.now().paused_lanes.contains(lane)
    }

    /// Reads the switches from Redis now.
    pub async fn refresh(&self, store: &Store) -> baton_store::Result<()> {
        let mut fresh = SwitchState::from_settings(store.switches().await?);
        fresh.lane_lag = store.lane_lags().await?;
        let fresh = Arc::new(fresh);
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Reads the switches at once, then every `every` until `stop`.
    pub async fn start(store: Store, every: Duration, stop: CancellationToken) -> Arc<Self> {
        let live = Arc::new(Self::default());
        if let Err(e) = live.refresh(&store).await {
            tracing::warn!(error = %e, "cannot read the operator switches yet");
        }
        let refreshing = live.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
                if let Err(e) = refreshing.refresh(&store).await {
                    tracing::warn!(error = %e, "cannot re-read the operator switches; the last ones stay in force");
                }
            }
        });
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(switch: &str, target: &str, value: &str) -> SwitchSetting {
        SwitchSetting {
            switch: switch.into(),
            target: target.into(),
            value: value.into(),
            actor: "a".into(),
            reason: "r".into(),
            at_ms: 1,
        }
    }

    #[test]
    fn settings_become_gates_pauses_and_caps() {
        let s = SwitchState::from_settings(vec![
            setting(name::TOOL_DISABLED, "refund", "true"),
            setting(name::TOOL_REQUIRES_APPROVAL, "wire", "true"),
            setting(name::LANE_PAUSED, "main", "true"),
            setting(name::TENANT_MAX_ACTIVE_RUNS, "acme", "3"),
            setting(name::TOOL_DISABLED, "echo", "false"),
            setting(name::TENANT_SUBMIT_RATE, "acme", "5"),
            setting(name::LANE_MAX_ACTIVE_RUNS, "main", "100"),
            setting(name::LANE_MAX_QUEUED, "main", "5000"),
        ]);
        assert!(s.gates.disabled.contains("refund") && !s.gates.disabled.contains("echo"));
        assert!(s.gates.approval.contains("wire"));
        assert!(s.paused_lanes.contains("main"));
        assert_eq!(s.tenant_caps.get("acme"), Some(&3));
        assert_eq!(s.tenant_rates.get("acme"), Some(&5));
        assert_eq!(s.lane_caps.get("main"), Some(&100));
        assert_eq!(s.lane_queue_limits.get("main"), Some(&5000));
    }
}
