//! The `script` planner's decision: which tool call comes next, or that the run is done.

use crate::v1::{planner, RunState, ToolCall};

/// What the planner proposes for the run's next step.
#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// Call this tool.
    Call(ToolCall),
    /// The goal is reached; finish the run.
    Finish,
}

/// The script planner: step `next_step` of the plan, or `Finish` past its end.
pub fn script_proposal(state: &RunState) -> Proposal {
    let steps = match state.spec.as_ref().and_then(|s| s.planner.as_ref()).and_then(|p| p.kind.as_ref()) {
        Some(planner::Kind::Script(script)) => &script.steps,
        None => return Proposal::Finish,
    };
    match steps.get(state.next_step as usize) {
        Some(call) => Proposal::Call(call.clone()),
        None => Proposal::Finish,
    }
}

/// Number of steps in a script plan (0 for other planners).
pub fn script_len(state: &RunState) -> u32 {
    match state.spec.as_ref().and_then(|s| s.planner.as_ref()).and_then(|p| p.kind.as_ref()) {
        Some(planner::Kind::Script(script)) => script.steps.len() as u32,
        None => 0,
    }
}
