//! The run state machine: what a tool call's outcome does to the checkpoint, which events it
//! emits, and what must happen next (another step, a retry after a back-off, a wait, or nothing).
//! What a planner's proposal does before any tool runs is in [`crate::proposal`].
//!
//! - [`apply_outcome`] (`outcome.rs`): a tool call's outcome applied to the run;
//! - [`finish`], [`wake`], [`requeue`] (`lifecycle.rs`): ending, waking and resuming a run;
//! - [`step_labels`] (`labels.rs`): how a step ended, for metrics.

mod labels;
mod lifecycle;
mod outcome;

pub use labels::{step_labels, step_start, StepStart};
pub use lifecycle::{finish, finish_after, reason, requeue, wake};
pub use outcome::{apply_outcome, fill_step};

use crate::v1::{RunEvent, RunState};

/// Who executed a step and when; stamped on records and events.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// Worker identity.
    pub worker: String,
    /// Fence token of the claim this step runs under.
    pub fence: u64,
    /// When the step started (ms since epoch).
    pub started_at_ms: i64,
    /// Now (ms since epoch).
    pub now_ms: i64,
    /// Delays of the retry tier topics, ascending. A retry waits the tier its back-off falls
    /// in (see [`crate::retry`]); empty means exactly the back-off.
    pub retry_tiers_ms: Vec<u64>,
}

/// How a tool call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The tool returned this JSON output.
    Completed {
        /// Tool output as JSON text.
        output_json: String,
    },
    /// The step parks the run until `wake_at_ms` (the `wait` tool).
    Waiting {
        /// When to wake (ms since epoch).
        wake_at_ms: i64,
    },
    /// The call was not made: its tool's circuit breaker is open or an operator disabled it.
    /// The step is tried again at `until_ms`, without spending an attempt.
    Held {
        /// Why, e.g. "circuit breaker of tool X is open".
        error: String,
        /// Earliest time to try again (ms since epoch).
        until_ms: i64,
    },
    /// The tool (or the planner) failed.
    Failed {
        /// What went wrong.
        error: String,
        /// Whether trying again may succeed (timeouts, 5xx) or not (bad arguments).
        retryable: bool,
        /// The least time to wait before trying again (a `Retry-After`), if the failure said.
        retry_after_ms: Option<u64>,
    },
}

impl Outcome {
    /// A failure that trying again may cure.
    pub fn retryable(error: impl Into<String>) -> Self {
        Outcome::Failed { error: error.into(), retryable: true, retry_after_ms: None }
    }

    /// A failure that trying again will not cure.
    pub fn fatal(error: impl Into<String>) -> Self {
        Outcome::Failed { error: error.into(), retryable: false, retry_after_ms: None }
    }
}

/// What the worker must hand on after committing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Produce a task for this step and attempt now.
    Advance {
        /// Step to run.
        step: u32,
        /// Attempt of that step.
        attempt: u32,
    },
    /// Produce a task for this step and attempt to the retry tier topic of `delay_ms`.
    Retry {
        /// Step to retry.
        step: u32,
        /// Attempt number of the retry.
        attempt: u32,
        /// How long the retry waits: its tier's delay, which names its topic.
        delay_ms: u64,
        /// Earliest time the retry may run (ms since epoch).
        not_before_ms: i64,
    },
    /// The run waits for a timer (a sleep, an approval's expiry): index it in the timers, no task.
    Wait {
        /// When to wake (ms since epoch).
        wake_at_ms: i64,
    },
    /// The run waits for a person (an approval without expiry, a reconciliation): no task, no timer.
    Hold,
    /// The step exhausted its retries: write a dead letter, no task.
    DeadLetter {
        /// The failed step.
        step: u32,
        /// Its tool.
        tool: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// The run is terminal: no task.
    Nothing,
    /// A proposal was accepted: its tool runs now, under the same lease.
    Execute,
}

/// The result of applying something to a checkpoint: the new state, its events, the next move.
#[derive(Debug, Clone)]
pub struct Transition {
    /// Checkpoint to commit.
    pub state: RunState,
    /// Events to append, in order.
    pub events: Vec<RunEvent>,
    /// Task to hand on after the commit.
    pub next: Next,
}

/// Test fixtures shared by the state machine's unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Outcome, StepContext};
    use crate::admission::{admit, Policy};
    use crate::catalog::Catalog;
    use crate::plan::{script_spec, Action};
    use crate::v1::{RunState, ToolCall};

    /// A script run of `n` echo steps, admitted.
    pub fn run(n: usize) -> RunState {
        let args: Vec<String> = (0..n).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
        let steps: Vec<(&str, &str)> = args.iter().map(|a| ("echo", a.as_str())).collect();
        script_run(&steps)
    }

    /// A script run of `steps`, admitted.
    pub fn script_run(steps: &[(&str, &str)]) -> RunState {
        admit("r", "t", "", script_spec(steps), &Policy::default(), &Catalog::builtins(), 0).unwrap()
    }

    /// Worker `w1`, fence 7, started at 10, now 20, no retry tiers.
    pub fn ctx() -> StepContext {
        StepContext { worker: "w1".into(), fence: 7, started_at_ms: 10, now_ms: 20, retry_tiers_ms: Vec::new() }
    }

    /// The script's call for the run's next step.
    pub fn call(state: &RunState) -> ToolCall {
        match crate::plan::script_proposal(state).action {
            Action::Call(c) => c,
            Action::Finish(_) => panic!("plan finished"),
        }
    }

    /// A completed call with output `{}`.
    pub fn ok() -> Outcome {
        Outcome::Completed { output_json: "{}".into() }
    }
}
