//! Stop requests: a cancel or an overdue deadline asked from outside the run, stored in the
//! run's `stop` field for the worker executing it, and turned into the run's final transition.

use crate::machine::{finish, finish_after, Next, Transition};
use crate::v1::{RunState, RunStatus, StopReason};

/// A request, from outside the run, to stop it: a cancel or an overdue deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    /// `Cancelled` or `TimedOut`.
    pub status: RunStatus,
    /// Stop reason code, e.g. `cancelled`, `deadline`.
    pub code: String,
    /// Who asked, e.g. `tenant:acme`, `reaper`.
    pub by: String,
    /// Free text, e.g. the canceller's reason.
    pub message: String,
}

impl StopRequest {
    /// The form stored in the run's `stop` field: `status|code|by|message`.
    pub fn encode(&self) -> String {
        format!("{}|{}|{}|{}", crate::status::name(self.status), self.code, self.by.replace('|', "/"), self.message)
    }

    /// Inverse of [`StopRequest::encode`].
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(4, '|');
        let status = crate::status::parse(parts.next()?)?;
        Some(Self { status, code: parts.next()?.into(), by: parts.next()?.into(), message: parts.next()?.into() })
    }

    /// Ends the run as asked.
    pub fn apply(&self, state: RunState, now_ms: i64) -> Transition {
        finish(state, self.status, self.reason(), now_ms)
    }

    /// Ends the run as asked right after `t`, a transition not yet committed that would have
    /// let it go on (its step's record and events are kept: what ran, ran).
    pub fn apply_after(&self, t: Transition, now_ms: i64) -> Transition {
        finish_after(t.state, t.events, self.status, self.reason(), now_ms, Next::Nothing)
    }

    fn reason(&self) -> StopReason {
        StopReason { code: self.code.clone(), message: self.message.clone(), by: self.by.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::plan::script_spec;

    fn run(n: usize) -> RunState {
        admit(
            "r",
            "t",
            "",
            script_spec(&vec![("echo", "{}"); n]),
            &Policy::default(),
            &crate::catalog::Catalog::builtins(),
            0,
        )
        .unwrap()
    }

    #[test]
    fn stop_requests_round_trip_and_apply() {
        let req = StopRequest {
            status: RunStatus::Cancelled,
            code: "cancelled".into(),
            by: "tenant:a|b".into(),
            message: "no | more".into(),
        };
        let back = StopRequest::decode(&req.encode()).unwrap();
        assert_eq!(back.message, "no | more");
        assert_eq!(back.by, "tenant:a/b");
        let t = back.apply(run(1), 9);
        assert_eq!(t.state.status(), RunStatus::Cancelled);
        assert_eq!(t.state.stop_reason.unwrap().by, "tenant:a/b");
        assert_eq!(StopRequest::decode("bogus"), None);
    }

    #[test]
    fn a_stop_after_a_step_keeps_the_step_and_ends_the_run() {
        use crate::machine::{apply_outcome, Outcome, StepContext};
        let state = run(3);
        let call = crate::v1::ToolCall { tool: "wait".into(), args_json: "{}".into() };
        let ctx = StepContext { worker: "w".into(), fence: 1, started_at_ms: 1, now_ms: 2, retry_tiers_ms: vec![] };
        let waits = apply_outcome(state, &call, Outcome::Waiting { wake_at_ms: 60_000 }, &ctx, 0.0);
        assert_eq!(waits.state.status(), RunStatus::Waiting);
        let seq_before = waits.state.event_seq - waits.events.len() as u64;
        let req =
            StopRequest { status: RunStatus::Cancelled, code: "cancelled".into(), by: "t".into(), message: "m".into() };
        let stopped = req.apply_after(waits.clone(), 3);
        assert_eq!(stopped.state.status(), RunStatus::Cancelled);
        assert_eq!(stopped.next, Next::Nothing);
        assert_eq!(stopped.state.steps.len(), 1, "the step that ran is recorded");
        assert_eq!(stopped.events.len(), waits.events.len() + 1, "its events, then RUN_FINISHED");
        assert_eq!(stopped.state.event_seq - stopped.events.len() as u64, seq_before, "one commit from the same read");
    }
}
