//! Stop requests: a cancel or an overdue deadline asked from outside the run, stored in the
//! run's `stop` field for the worker executing it, and turned into the run's final transition.

use crate::machine::{finish, Transition};
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
        let why = StopReason { code: self.code.clone(), message: self.message.clone(), by: self.by.clone() };
        finish(state, self.status, why, now_ms)
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
}
