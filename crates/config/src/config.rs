//! The config tree's root: one section per concern (each defined in its own module), every
//! field with a default that runs on a laptop.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    Agent, Approvals, Auth, Breakers, Gateway, Kafka, Lane, Model, Policy, Reaper, Redis, Runs, Scheduler, Switches,
    Telemetry, Tools, Worker,
};

/// The whole fleet's config. Each service reads the sections it needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Kafka-protocol broker and topics.
    pub kafka: Kafka,
    /// Redis connection.
    pub redis: Redis,
    /// Admission: limits, defaults and ceilings for run specs.
    pub runs: Runs,
    /// The gRPC gateway.
    pub gateway: Gateway,
    /// Step executors.
    pub worker: Worker,
    /// Recovery of abandoned work.
    pub reaper: Reaper,
    /// Delayed retries and timers.
    pub scheduler: Scheduler,
    /// Logs and traces.
    pub telemetry: Telemetry,
    /// Model endpoints a `model` planner may name: `[models.<name>]`.
    pub models: BTreeMap<String, Model>,
    /// Agents a `grpc` planner may name: `[agents.<name>]`.
    pub agents: BTreeMap<String, Agent>,
    /// Lanes' version sets and routing weights: `[lanes.<name>]` (names from `runs.lanes`).
    pub lanes: BTreeMap<String, Lane>,
    /// The tool manifest.
    pub tools: Tools,
    /// Tenant policy rules applied to every proposal.
    pub policy: Policy,
    /// Approval requests: expiry and what denial does.
    pub approvals: Approvals,
    /// Per-tool circuit breakers shared by the fleet.
    pub breakers: Breakers,
    /// Operator switches (tools, lanes, tenant caps).
    pub switches: Switches,
    /// Who may call the gateway: API keys, JWTs, roles (docs/security.md).
    pub auth: Auth,
}

impl Config {
    /// The admission policy: `[runs]` limits, and the configured model endpoints and agents.
    pub fn admission_policy(&self) -> baton_core::admission::Policy {
        baton_core::admission::Policy {
            models: self.models.keys().cloned().collect(),
            agents: self.agents.keys().cloned().collect(),
            ..self.runs.limits()
        }
    }

    /// The most step records a claim of a model or agent run reads: the largest
    /// `history_max_steps` of the configured model endpoints and agents (0 when there are none).
    /// What a planner is shown is a tail of what was read, so one bound serves them all.
    pub fn history_window(&self) -> u32 {
        let models = self.models.values().map(|m| m.history_max_steps);
        let agents = self.agents.values().map(|a| a.history_max_steps);
        models.chain(agents).max().unwrap_or(0)
    }
}
