//! Run status names and the terminal/waiting classification the whole fleet agrees on.

use crate::v1::{RunState, RunStatus};

/// True when no further step will ever run.
pub fn is_terminal(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Succeeded
            | RunStatus::Failed
            | RunStatus::Cancelled
            | RunStatus::TimedOut
            | RunStatus::BudgetExhausted
            | RunStatus::Refused
            | RunStatus::DeadLettered
    )
}

/// Short lowercase name stored in Redis (`status` field) and read by the Lua scripts.
pub fn name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Unspecified => "unspecified",
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Waiting => "waiting",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
        RunStatus::TimedOut => "timed_out",
        RunStatus::BudgetExhausted => "budget_exhausted",
        RunStatus::Refused => "refused",
        RunStatus::DeadLettered => "dead_lettered",
    }
}

/// Inverse of [`name`]; `None` for an unknown name.
pub fn parse(name: &str) -> Option<RunStatus> {
    ALL.iter().copied().find(|s| self::name(*s) == name)
}

/// Every status, in declaration order.
pub const ALL: [RunStatus; 11] = [
    RunStatus::Unspecified,
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::Waiting,
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::Cancelled,
    RunStatus::TimedOut,
    RunStatus::BudgetExhausted,
    RunStatus::Refused,
    RunStatus::DeadLettered,
];

/// The names of the terminal statuses, for the Lua scripts.
pub fn terminal_names() -> Vec<&'static str> {
    ALL.iter().copied().filter(|s| is_terminal(*s)).map(name).collect()
}

/// A run's status for messages: `succeeded`, or `waiting for approval` while it waits.
pub fn describe(state: &RunState) -> String {
    match state.status() {
        RunStatus::Waiting if !state.wait_reason.is_empty() => format!("waiting for {}", state.wait_reason),
        status => name(status).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(parse(name(s)), Some(s));
        }
        assert_eq!(parse("nope"), None);
    }

    #[test]
    fn only_end_states_are_terminal() {
        assert!(!is_terminal(RunStatus::Queued));
        assert!(!is_terminal(RunStatus::Running));
        assert!(!is_terminal(RunStatus::Waiting));
        assert!(is_terminal(RunStatus::Succeeded));
        assert!(is_terminal(RunStatus::DeadLettered));
        assert_eq!(terminal_names().len(), 7);
    }
}
