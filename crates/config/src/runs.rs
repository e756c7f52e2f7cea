//! `[runs]`: what a submitted spec may ask for, the defaults it gets, and how long runs are kept.

use serde::{Deserialize, Serialize};

/// `[runs]`: what a submitted spec may ask for, and what it gets when it asks for nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Runs {
    /// Lanes that have workers.
    pub lanes: Vec<String>,
    /// Most steps a script plan may list.
    pub max_plan_steps: u32,
    /// Largest args of one tool call, bytes.
    pub max_args_bytes: usize,
    /// Largest goal text, bytes.
    pub max_goal_bytes: usize,
    /// Step budget when the spec sets none.
    pub default_max_steps: u32,
    /// Highest step budget a spec may set.
    pub ceiling_max_steps: u32,
    /// Wall-clock budget when the spec sets none.
    pub default_wall_clock_ms: u64,
    /// Highest wall-clock budget a spec may set.
    pub ceiling_wall_clock_ms: u64,
    /// Attempts per step when the spec sets none.
    pub default_max_attempts: u32,
    /// Highest attempts per step a spec may set.
    pub ceiling_max_attempts: u32,
    /// First retry back-off when the spec sets none.
    pub default_initial_backoff_ms: u64,
    /// Back-off cap when the spec sets none.
    pub default_max_backoff_ms: u64,
    /// How long a finished run's checkpoint and history are kept.
    pub retention_secs: u64,
    /// How long a submit idempotency key maps to its run.
    pub idempotency_ttl_secs: u64,
    /// How long a produced task may wait before the reaper checks that it was picked up.
    pub dispatch_grace_ms: u64,
    /// Token budget (input + output) when the spec sets none.
    pub default_max_tokens: u64,
    /// Highest token budget a spec may set.
    pub ceiling_max_tokens: u64,
    /// Cost budget (millionths of the price unit) when the spec sets none.
    pub default_max_cost_micros: u64,
    /// Highest cost budget a spec may set.
    pub ceiling_max_cost_micros: u64,
    /// Tool-call budget when the spec sets none (a script gets at least its length).
    pub default_max_tool_calls: u32,
    /// Rejected proposals fed back to a planner before the run is refused, when the spec sets none.
    pub default_max_rejections: u32,
    /// Runs not yet ended a tenant may have (0: no cap); an operator switch overrides it per tenant.
    pub max_active_per_tenant: u32,
    /// Runs a tenant may submit per second, on average (0: no limit); a token bucket in Redis
    /// shared by every gateway. `tenant.submit_rate` overrides it per tenant.
    pub submit_rate_per_tenant: u32,
    /// Submits a tenant may make at once after a quiet spell (the bucket's size); at least the rate.
    pub submit_burst_per_tenant: u32,
    /// Runs not yet ended a lane may have (0: no cap); `lane.max_active_runs` overrides it per lane.
    pub max_active_per_lane: u32,
    /// Task records a lane may have queued — its worker group's consumer lag, as the reaper last
    /// read it — before submits to it are refused (0: no limit); `lane.max_queued` overrides it.
    pub max_queued_per_lane: u64,
}

impl Default for Runs {
    fn default() -> Self {
        let p = baton_core::admission::Policy::default();
        Self {
            lanes: p.lanes,
            max_plan_steps: p.max_plan_steps,
            max_args_bytes: p.max_args_bytes,
            max_goal_bytes: p.max_goal_bytes,
            default_max_steps: p.default_max_steps,
            ceiling_max_steps: p.ceiling_max_steps,
            default_wall_clock_ms: p.default_wall_clock_ms,
            ceiling_wall_clock_ms: p.ceiling_wall_clock_ms,
            default_max_attempts: p.default_max_attempts,
            ceiling_max_attempts: p.ceiling_max_attempts,
            default_initial_backoff_ms: p.default_initial_backoff_ms,
            default_max_backoff_ms: p.default_max_backoff_ms,
            retention_secs: 7 * 24 * 3600,
            idempotency_ttl_secs: 24 * 3600,
            dispatch_grace_ms: 60_000,
            default_max_tokens: p.default_max_tokens,
            ceiling_max_tokens: p.ceiling_max_tokens,
            default_max_cost_micros: p.default_max_cost_micros,
            ceiling_max_cost_micros: p.ceiling_max_cost_micros,
            default_max_tool_calls: p.default_max_tool_calls,
            default_max_rejections: p.default_max_rejections,
            max_active_per_tenant: 0,
            submit_rate_per_tenant: 0,
            submit_burst_per_tenant: 0,
            max_active_per_lane: 0,
            max_queued_per_lane: 0,
        }
    }
}

impl Runs {
    /// How long a finished run is kept, in milliseconds.
    pub fn retention_ms(&self) -> u64 {
        self.retention_secs.saturating_mul(1000)
    }

    pub(crate) fn limits(&self) -> baton_core::admission::Policy {
        baton_core::admission::Policy {
            lanes: self.lanes.clone(),
            max_plan_steps: self.max_plan_steps,
            max_args_bytes: self.max_args_bytes,
            max_goal_bytes: self.max_goal_bytes,
            default_max_steps: self.default_max_steps,
            ceiling_max_steps: self.ceiling_max_steps,
            default_wall_clock_ms: self.default_wall_clock_ms,
            ceiling_wall_clock_ms: self.ceiling_wall_clock_ms,
            default_max_attempts: self.default_max_attempts,
            ceiling_max_attempts: self.ceiling_max_attempts,
            default_initial_backoff_ms: self.default_initial_backoff_ms,
            default_max_backoff_ms: self.default_max_backoff_ms,
            default_max_tokens: self.default_max_tokens,
            ceiling_max_tokens: self.ceiling_max_tokens,
            default_max_cost_micros: self.default_max_cost_micros,
            ceiling_max_cost_micros: self.ceiling_max_cost_micros,
            default_max_tool_calls: self.default_max_tool_calls,
            default_max_rejections: self.default_max_rejections,
            ..baton_core::admission::Policy::default()
        }
    }
}
