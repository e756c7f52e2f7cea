//! How one step ended, as the metric labels name it: the tool and an outcome from a small set.

use super::{Next, Transition};
use crate::v1::{RunState, StepOutcome};

/// How one step ended, for metrics: the tool it called (or was about to call; empty if none)
/// and an outcome from a small fixed set — the recorded step's outcome (`completed`, `failed`,
/// `rejected`, `drafted`) when the step added a record, else what the run does next (`proposed`,
/// `retry`, `waiting`, `held`, `dead_lettered`, `finished`). `before` is [`step_start`] of the
/// state the step started from.
pub fn step_labels(before: &StepStart, t: &Transition) -> (String, &'static str) {
    if t.state.steps.len() > before.steps {
        if let Some(record) = t.state.steps.last() {
            let outcome = match record.outcome() {
                StepOutcome::Unspecified | StepOutcome::Completed => "completed",
                StepOutcome::Rejected => "rejected",
                StepOutcome::Drafted => "drafted",
                StepOutcome::Failed => "failed",
            };
            return (record.tool.clone(), outcome);
        }
    }
    let tool = pending_tool(&t.state).unwrap_or_else(|| before.tool.clone());
    let outcome = match &t.next {
        Next::Advance { .. } | Next::Execute => "proposed",
        Next::Retry { .. } => "retry",
        Next::Wait { .. } => "waiting",
        Next::Hold => "held",
        Next::DeadLetter { .. } => "dead_lettered",
        Next::Nothing => "finished",
    };
    (tool, outcome)
}

/// What [`step_labels`] needs of the state a step started from (cheap: no clone of the state).
#[derive(Debug, Clone, Default)]
pub struct StepStart {
    /// Step records the state held.
    pub steps: usize,
    /// Tool of its pending call, if any.
    pub tool: String,
}

/// The [`StepStart`] of `state`.
pub fn step_start(state: &RunState) -> StepStart {
    StepStart { steps: state.steps.len(), tool: pending_tool(state).unwrap_or_default() }
}

fn pending_tool(state: &RunState) -> Option<String> {
    state.pending.as_ref().and_then(|p| p.call.as_ref()).map(|c| c.tool.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::fixtures::{call, ctx, ok, run};
    use crate::machine::{apply_outcome, finish, reason, Outcome};
    use crate::v1::RunStatus;

    #[test]
    fn step_labels_name_the_tool_and_how_the_step_ended() {
        let s = run(3);
        let c = call(&s);
        let start = step_start(&s);
        let t = apply_outcome(s.clone(), &c, ok(), &ctx(), 0.0);
        assert_eq!(step_labels(&start, &t), ("echo".to_string(), "completed"));
        let t = apply_outcome(s.clone(), &c, Outcome::Held { error: "off".into(), until_ms: 99 }, &ctx(), 0.0);
        assert_ne!(step_labels(&start, &t).1, "completed");
        let t = finish(s, RunStatus::Cancelled, reason("cancelled", "by test"), 30);
        assert_eq!(step_labels(&start, &t), (String::new(), "finished"));
    }
}
