//! The step executor: given a claimed checkpoint, ask the planner for a proposal, decide whether
//! the runtime allows it, run the tool under a timeout and cancellation, and return the
//! transitions to commit. No Redis, no Kafka: the worker wraps this in claim/commit/hand-on.

pub mod http;
pub mod metric_definitions;
mod planner;
mod step;
pub mod tools;

pub use planner::{
    step_result_text, AgentPlanner, ModelPlanner, PlanRequest, Planner, PlannerError, Planners, ScriptPlanner,
};
pub use step::{execute, plan, Abandoned, Planned, StepEnv, StepLimits};
pub use tools::{Breakers, Gate, Invocation, NoBreakers, Tool, ToolError, ToolRegistry};

/// A boxed future, the return type of planner and tool trait methods.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
