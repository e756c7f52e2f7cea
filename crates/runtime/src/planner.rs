//! Planners propose a run's next action. The runtime validates every proposal before acting.

use baton_core::plan::{script_proposal, Proposal};
use baton_proto::v1::RunState;

use crate::BoxFuture;

/// Proposes the next action of a run from its checkpoint.
pub trait Planner: Send + Sync {
    /// The proposal for step `state.next_step`, or an error message.
    fn propose<'a>(&'a self, state: &'a RunState) -> BoxFuture<'a, Result<Proposal, String>>;
}

/// The `script` planner: the spec's fixed list of tool calls, in order.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScriptPlanner;

impl Planner for ScriptPlanner {
    fn propose<'a>(&'a self, state: &'a RunState) -> BoxFuture<'a, Result<Proposal, String>> {
        Box::pin(async move { Ok(script_proposal(state)) })
    }
}
