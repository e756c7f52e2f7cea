//! Planners as the domain sees them: what a planner proposes ([`Proposal`]), building specs of
//! each kind, and the `script` planner itself (a fixed list of calls, so it needs no I/O).

use crate::v1::{planner, AgentPlanner, ModelPlanner, Planner, RunSpec, RunState, ScriptPlan, ToolCall, Usage};

/// What a planner wants next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Call this tool.
    Call(ToolCall),
    /// The goal is reached: end the run with this result (empty for scripts).
    Finish(String),
}

/// A planner's answer for one step, with what asking cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The proposed action.
    pub action: Action,
    /// Tokens and cost of the planner call (zero for scripts).
    pub usage: Usage,
    /// Text the planner sent along with a tool call, if any.
    pub text: String,
}

/// A spec with a `script` planner of `(tool, args_json)` steps and nothing else set.
pub fn script_spec(steps: &[(&str, &str)]) -> RunSpec {
    let steps = steps.iter().map(|(t, a)| ToolCall { tool: t.to_string(), args_json: a.to_string() }).collect();
    RunSpec { planner: Some(Planner { kind: Some(planner::Kind::Script(ScriptPlan { steps })) }), ..Default::default() }
}

/// A spec driven by the model endpoint `endpoint`, allowed to call `tools`.
pub fn model_spec(endpoint: &str, goal: &str, tools: &[&str]) -> RunSpec {
    let model = ModelPlanner { endpoint: endpoint.into(), ..Default::default() };
    RunSpec {
        goal: goal.into(),
        planner: Some(Planner { kind: Some(planner::Kind::Model(model)) }),
        allowed_tools: tools.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

/// A spec driven by the agent `agent` (a `baton.v1.AgentService`), allowed to call `tools`.
pub fn agent_spec(agent: &str, goal: &str, tools: &[&str]) -> RunSpec {
    let grpc = AgentPlanner { agent: agent.into() };
    RunSpec {
        goal: goal.into(),
        planner: Some(Planner { kind: Some(planner::Kind::Grpc(grpc)) }),
        allowed_tools: tools.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

/// The planner of a spec, if it has one.
pub fn kind(spec: &RunSpec) -> Option<&planner::Kind> {
    spec.planner.as_ref().and_then(|p| p.kind.as_ref())
}

/// `script`, `model` or `grpc`; `none` for a spec without a planner.
pub fn kind_name(spec: &RunSpec) -> &'static str {
    match kind(spec) {
        Some(planner::Kind::Script(_)) => "script",
        Some(planner::Kind::Model(_)) => "model",
        Some(planner::Kind::Grpc(_)) => "grpc",
        None => "none",
    }
}

/// True when the run follows a fixed script: its proposals are already durable in the spec,
/// a refused call ends the run, and the run succeeds when the script is done.
pub fn is_script(state: &RunState) -> bool {
    matches!(state.spec.as_ref().and_then(kind), Some(planner::Kind::Script(_)))
}

/// The steps of a spec's script plan (empty for other planners).
pub fn script_steps(spec: &RunSpec) -> &[ToolCall] {
    match kind(spec) {
        Some(planner::Kind::Script(script)) => &script.steps,
        _ => &[],
    }
}

fn run_steps(state: &RunState) -> &[ToolCall] {
    state.spec.as_ref().map_or(&[], script_steps)
}

/// The script planner: step `next_step` of the plan, or finish past its end.
pub fn script_proposal(state: &RunState) -> Proposal {
    let action = match run_steps(state).get(state.next_step as usize) {
        Some(call) => Action::Call(call.clone()),
        None => Action::Finish(String::new()),
    };
    Proposal { action, usage: Usage::default(), text: String::new() }
}

/// Number of steps in a script plan (0 for other planners).
pub fn script_len(state: &RunState) -> u32 {
    run_steps(state).len() as u32
}
