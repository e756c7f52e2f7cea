//! Planners propose a run's next action; the runtime judges every proposal before acting.
//! [`ScriptPlanner`] follows the spec's fixed plan, [`ModelPlanner`] asks an OpenAI-compatible
//! chat-completions endpoint, [`AgentPlanner`] asks the user's own `baton.v1.AgentService`.
//! [`Planners`] holds the configured ones and picks a run's.

mod agent;
pub mod history;
mod model;
mod text_call;

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::plan::{script_proposal, Proposal};
use baton_proto::v1::{planner, RunState, ToolInfo};

pub use agent::AgentPlanner;
pub use model::ModelPlanner;

use crate::BoxFuture;

/// What a planner is asked.
pub struct PlanRequest<'a> {
    /// The run so far: goal, spec, spend.
    pub state: &'a RunState,
    /// The run's latest recorded steps, oldest first, ending at its newest: what the claim read
    /// (the planners' largest `history_max_steps`) plus the steps of this slice. A planner shows
    /// its model or agent a tail of it, as its history policy says.
    pub history: &'a [baton_proto::v1::StepRecord],
    /// The tools the run may call, with their schemas.
    pub tools: Vec<ToolInfo>,
    /// Tokens the run's budget has left (`None`: unlimited).
    pub tokens_left: Option<u64>,
}

/// A planner call that failed: retryable ones go through the retry tiers, the others end the
/// run `failed` with reason `planner_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannerError {
    /// What went wrong, for the operator.
    pub message: String,
    /// Whether asking again later may work (timeouts, 429, 5xx).
    pub retryable: bool,
    /// The least time to wait before asking again, if the planner said (`Retry-After`).
    pub retry_after_ms: Option<u64>,
}

impl PlannerError {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true, retry_after_ms: None }
    }

    /// A failure that asking again will not cure.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false, retry_after_ms: None }
    }
}

/// Proposes the next action of a run.
pub trait Planner: Send + Sync {
    /// The proposal for step `req.state.next_step`.
    fn propose<'a>(&'a self, req: PlanRequest<'a>) -> BoxFuture<'a, Result<Proposal, PlannerError>>;
}

/// The `script` planner: the spec's fixed list of tool calls, in order.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScriptPlanner;

impl Planner for ScriptPlanner {
    fn propose<'a>(&'a self, req: PlanRequest<'a>) -> BoxFuture<'a, Result<Proposal, PlannerError>> {
        Box::pin(async move { Ok(script_proposal(req.state)) })
    }
}

/// The configured planners of a worker: one per `[models.<name>]` and `[agents.<name>]`.
#[derive(Clone, Default)]
pub struct Planners {
    models: BTreeMap<String, Arc<ModelPlanner>>,
    agents: BTreeMap<String, Arc<AgentPlanner>>,
}

impl Planners {
    /// Planners for every model endpoint and agent in `config`, sharing one HTTP client.
    pub fn from_config(config: &baton_config::Config, http: &reqwest::Client) -> Result<Self, String> {
        let models = config
            .models
            .iter()
            .map(|(name, m)| (name.clone(), Arc::new(ModelPlanner::new(name, m.clone(), http.clone()))))
            .collect();
        let mut agents = BTreeMap::new();
        for (name, a) in &config.agents {
            let planner = AgentPlanner::new(name, a).map_err(|e| format!("agents.{name}.endpoint: {e}"))?;
            agents.insert(name.clone(), Arc::new(planner));
        }
        Ok(Self { models, agents })
    }

    /// The planner of `state`'s spec. A planner this worker lacks (its config differs from
    /// the gateway's) fails retryably, so the step waits in the retry tiers for a worker that has it.
    pub fn for_run(&self, state: &RunState) -> Arc<dyn Planner> {
        let missing = |what: String| Arc::new(Missing(what)) as Arc<dyn Planner>;
        match state.spec.as_ref().and_then(baton_core::plan::kind) {
            Some(planner::Kind::Script(_)) => Arc::new(ScriptPlanner),
            Some(planner::Kind::Model(m)) => match self.models.get(&m.endpoint) {
                Some(p) => p.clone(),
                None => missing(format!("this worker has no model endpoint {:?} configured", m.endpoint)),
            },
            Some(planner::Kind::Grpc(a)) => match self.agents.get(&a.agent) {
                Some(p) => p.clone(),
                None => missing(format!("this worker has no agent {:?} configured", a.agent)),
            },
            None => missing("the run has no planner".into()),
        }
    }
}

/// A planner the worker does not have: every call fails retryably with the reason.
struct Missing(String);

impl Planner for Missing {
    fn propose<'a>(&'a self, _req: PlanRequest<'a>) -> BoxFuture<'a, Result<Proposal, PlannerError>> {
        Box::pin(async move { Err(PlannerError::retryable(self.0.clone())) })
    }
}

/// How a tool result, rejection, draft or failure reads to a planner, from a step record.
pub fn step_result_text(record: &baton_proto::v1::StepRecord) -> String {
    use baton_proto::v1::StepOutcome;
    match record.outcome() {
        StepOutcome::Unspecified | StepOutcome::Completed => record.output_json.clone(),
        StepOutcome::Rejected => format!("rejected by the runtime ({}): {}", record.reason_code, record.error),
        StepOutcome::Drafted => record.error.clone(),
        StepOutcome::Failed => format!("the tool failed: {}", record.error),
    }
}
