//! What governs runs once admitted: lanes' version sets and weights, the tool manifest, tenant
//! policy rules, approvals, circuit breakers and operator switches.

use serde::{Deserialize, Serialize};

/// `[lanes.<name>]`: what a lane runs and how much new work it gets. A run submitted without a
/// lane is routed by weight (an operator's `lane.weight` switch overrides this one) and stamped
/// with its lane's version set, which never changes for that run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lane {
    /// Share of new runs routed here, against the other lanes' weights. When no lane sets one,
    /// every run goes to `main`.
    pub weight: u32,
    /// Agent version.
    pub agent: String,
    /// Model version.
    pub model: String,
    /// Prompt version.
    pub prompt: String,
    /// Policy version.
    pub policy: String,
    /// Tool schema version.
    pub tool_schema: String,
    /// Baton build of the lane's workers (empty: the gateway's own version).
    pub build: String,
}

/// `[tools]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tools {
    /// Path of the tool manifest (TOML, see docs/agents.md); empty means built-in tools only.
    /// Re-read when it changes and on `AdminService/ReloadTools`, without a restart.
    pub manifest: String,
    /// How often the manifest file (and the fleet's reload signal) is checked.
    pub reload_interval_ms: u64,
}

impl Default for Tools {
    fn default() -> Self {
        Self { manifest: String::new(), reload_interval_ms: 1_000 }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// `[[policy.rules]]`, applied to every proposal of the tenants they name.
    pub rules: Vec<PolicyRule>,
}

/// One `[[policy.rules]]` entry: deny a tool, or cap a numeric argument of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyRule {
    /// Tenant the rule applies to; `*` for all.
    pub tenant: String,
    /// Tool the rule applies to.
    pub tool: String,
    /// Reject every call of the tool.
    pub deny: bool,
    /// Argument to cap: a top-level name or a JSON pointer (`/order/amount`).
    pub arg: String,
    /// Highest value of `arg` allowed.
    pub max: Option<f64>,
    /// Why, shown in the rejection.
    pub reason: String,
}

impl Default for PolicyRule {
    fn default() -> Self {
        Self {
            tenant: "*".into(),
            tool: String::new(),
            deny: false,
            arg: String::new(),
            max: None,
            reason: String::new(),
        }
    }
}

impl Policy {
    /// The rules as the judge applies them.
    pub fn rules(&self) -> Vec<baton_core::judge::Rule> {
        use baton_core::judge::{Rule, RuleEffect};
        self.rules
            .iter()
            .map(|r| Rule {
                tenant: r.tenant.clone(),
                tool: r.tool.clone(),
                effect: match r.max {
                    Some(max) if !r.deny => RuleEffect::Cap { arg: r.arg.clone(), max },
                    _ => RuleEffect::Deny,
                },
                reason: r.reason.clone(),
            })
            .collect()
    }
}

/// What expiry does to an approval request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// Deny it (actor `baton:expired`).
    Deny,
    /// Wait another `ttl_ms`, `max_escalations` times, then deny.
    Escalate,
}

/// What denial does to a run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnDeny {
    /// Tell the planner, which proposes again (a script run ends `refused`).
    FeedBack,
    /// End the run `refused`.
    EndRun,
}

/// `[approvals]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Approvals {
    /// How long a request waits for a person (0: forever).
    pub ttl_ms: u64,
    /// `deny` or `escalate`.
    pub on_expiry: OnExpiry,
    /// Escalations before an unanswered request is denied.
    pub max_escalations: u32,
    /// `feed_back` or `end_run`.
    pub on_deny: OnDeny,
}

impl Default for Approvals {
    fn default() -> Self {
        Self { ttl_ms: 86_400_000, on_expiry: OnExpiry::Deny, max_escalations: 0, on_deny: OnDeny::FeedBack }
    }
}

impl Approvals {
    /// The core's view.
    pub fn policy(&self) -> baton_core::approval::ApprovalPolicy {
        use baton_core::approval as a;
        a::ApprovalPolicy {
            ttl_ms: self.ttl_ms,
            on_expiry: match self.on_expiry {
                OnExpiry::Deny => a::OnExpiry::Deny,
                OnExpiry::Escalate => a::OnExpiry::Escalate,
            },
            max_escalations: self.max_escalations,
            on_deny: match self.on_deny {
                OnDeny::FeedBack => a::OnDeny::FeedBack,
                OnDeny::EndRun => a::OnDeny::EndRun,
            },
        }
    }
}

/// `[breakers]`: a manifest tool's breaker opens after `failures` retryable failures (5xx,
/// 408/429, timeouts, connection errors) within `window_ms`, seen by any worker; while open,
/// calls are held without spending attempts; after `cooldown_ms` one probe call is let through,
/// and its success closes the breaker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Breakers {
    /// False turns breakers off.
    pub enabled: bool,
    /// Failures that open the breaker.
    pub failures: u32,
    /// Window the failures are counted in.
    pub window_ms: u64,
    /// How long it stays open before a probe.
    pub cooldown_ms: u64,
}

impl Default for Breakers {
    fn default() -> Self {
        Self { enabled: true, failures: 5, window_ms: 30_000, cooldown_ms: 10_000 }
    }
}

/// `[switches]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    /// How often each service re-reads the operator switches from Redis.
    pub refresh_ms: u64,
    /// How long a scripted or committed call of a disabled tool waits before it is tried again.
    pub held_retry_ms: u64,
}

impl Default for Switches {
    fn default() -> Self {
        Self { refresh_ms: 1_000, held_retry_ms: 10_000 }
    }
}
