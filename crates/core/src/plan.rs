//! The `script` planner: building a script spec, reading its steps, and deciding which tool
//! call comes next or that the run is done.

use crate::v1::{planner, Planner, RunSpec, RunState, ScriptPlan, ToolCall};

/// What the planner proposes for the run's next step.
#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// Call this tool.
    Call(ToolCall),
    /// The goal is reached; finish the run.
    Finish,
}

/// A spec with a `script` planner of `(tool, args_json)` steps and nothing else set.
pub fn script_spec(steps: &[(&str, &str)]) -> RunSpec {
    let steps = steps.iter().map(|(t, a)| ToolCall { tool: t.to_string(), args_json: a.to_string() }).collect();
    RunSpec { planner: Some(Planner { kind: Some(planner::Kind::Script(ScriptPlan { steps })) }), ..Default::default() }
}

/// The steps of a spec's script plan (empty for other planners).
pub fn script_steps(spec: &RunSpec) -> &[ToolCall] {
    match spec.planner.as_ref().and_then(|p| p.kind.as_ref()) {
        Some(planner::Kind::Script(script)) => &script.steps,
        None => &[],
    }
}

fn run_steps(state: &RunState) -> &[ToolCall] {
    state.spec.as_ref().map_or(&[], script_steps)
}

/// The script planner: step `next_step` of the plan, or `Finish` past its end.
pub fn script_proposal(state: &RunState) -> Proposal {
    match run_steps(state).get(state.next_step as usize) {
        Some(call) => Proposal::Call(call.clone()),
        None => Proposal::Finish,
    }
}

/// Number of steps in a script plan (0 for other planners).
pub fn script_len(state: &RunState) -> u32 {
    run_steps(state).len() as u32
}
