//! One bounded step: bounds → proposal → runtime checks → tool call (timeout, cancellation) →
//! the transition to commit. "The model proposes, the runtime decides" happens here.

use std::time::Duration;

use baton_core::machine::{apply_outcome, check_bounds, finish, reason, Outcome, StepContext, Transition};
use baton_core::plan::Proposal;
use baton_core::step_idempotency_key;
use baton_proto::v1::{RunState, RunStatus};
use tokio_util::sync::CancellationToken;

use crate::{Invocation, Planner, ToolError, ToolRegistry};

/// Per-step limits from the worker's config.
#[derive(Debug, Clone, Copy)]
pub struct StepLimits {
    /// Longest one tool call may take.
    pub step_timeout: Duration,
    /// Largest tool output accepted, bytes.
    pub max_output_bytes: usize,
}

/// The step stopped without an outcome to commit (its cancellation token fired): the lease was
/// lost or the worker is shutting down. Nothing may be written; another worker will redo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

/// Executes step `state.next_step` and returns the transition to commit.
pub async fn execute_step(
    state: RunState,
    planner: &dyn Planner,
    tools: &ToolRegistry,
    limits: StepLimits,
    mut ctx: StepContext,
    cancel: &CancellationToken,
    now_ms: impl Fn() -> i64,
) -> Result<Transition, Abandoned> {
    if let Some((status, why)) = check_bounds(&state, ctx.now_ms) {
        return Ok(finish(state, status, why, ctx.now_ms));
    }
    let call = match planner.propose(&state).await {
        Ok(Proposal::Call(call)) => call,
        Ok(Proposal::Finish) => {
            return Ok(finish(state, RunStatus::Succeeded, reason("completed", "planner finished the run"), now_ms()))
        }
        Err(e) => {
            let outcome = Outcome::Failed { error: format!("planner: {e}"), retryable: true };
            let call = Default::default();
            return Ok(apply_outcome(state, &call, outcome, &ctx, jitter()));
        }
    };
    // The runtime decides: the tool must be allowed for this run and its arguments valid.
    let allowed = state.spec.as_ref().is_some_and(|s| s.allowed_tools.contains(&call.tool));
    if !allowed {
        let why = reason(
            "tool_not_allowed",
            format!("step {} proposed tool {:?}, which is not allowed", state.next_step, call.tool),
        );
        return Ok(finish(state, RunStatus::Refused, why, now_ms()));
    }
    let args = match baton_core::tools::validate_call(&call.tool, &call.args_json) {
        Ok(args) => args,
        Err(e) => {
            let why = reason("invalid_args", format!("step {} ({}): {e}", state.next_step, call.tool));
            return Ok(finish(state, RunStatus::Refused, why, now_ms()));
        }
    };
    if call.tool == baton_core::tools::WAIT_TOOL {
        // Not a tool call: the runtime parks the run on a timer and frees the worker.
        if let Ok(wake_at_ms) = baton_core::tools::wait_until(&args, ctx.now_ms) {
            return Ok(apply_outcome(state, &call, Outcome::Waiting { wake_at_ms }, &ctx, jitter()));
        }
    }
    let Some(tool) = tools.get(&call.tool) else {
        let why =
            reason("tool_unavailable", format!("step {}: this worker has no tool {:?}", state.next_step, call.tool));
        return Ok(finish(state, RunStatus::Refused, why, now_ms()));
    };
    let invocation = Invocation {
        run_id: state.run_id.clone(),
        step: state.next_step,
        attempt: state.attempt,
        idempotency_key: step_idempotency_key(&state.run_id, state.next_step),
        fence: ctx.fence,
        args,
        cancel: cancel.child_token(),
    };
    // A step never outlives its run's deadline.
    let until_deadline = Duration::from_millis((state.deadline_at_ms - ctx.now_ms).max(0) as u64);
    let deadline_first = state.deadline_at_ms > 0 && until_deadline < limits.step_timeout;
    let timeout = if deadline_first { until_deadline } else { limits.step_timeout };
    let result = tokio::time::timeout(timeout, tool.invoke(invocation)).await;
    if cancel.is_cancelled() {
        return Err(Abandoned);
    }
    if result.is_err() && deadline_first {
        let why =
            reason("deadline", format!("wall-clock deadline passed during step {} ({})", state.next_step, call.tool));
        return Ok(finish(state, RunStatus::TimedOut, why, now_ms()));
    }
    let outcome = match result {
        Err(_) => Outcome::Failed {
            error: format!("timed out after {} ms", limits.step_timeout.as_millis()),
            retryable: true,
        },
        Ok(Err(ToolError::Cancelled)) => return Err(Abandoned),
        Ok(Err(ToolError::Retryable(error))) => Outcome::Failed { error, retryable: true },
        Ok(Err(ToolError::Fatal(error))) => Outcome::Failed { error, retryable: false },
        Ok(Ok(value)) => {
            let output_json = value.to_string();
            if output_json.len() > limits.max_output_bytes {
                Outcome::Failed {
                    error: format!("output is {} bytes, the limit is {}", output_json.len(), limits.max_output_bytes),
                    retryable: false,
                }
            } else {
                Outcome::Completed { output_json }
            }
        }
    };
    ctx.now_ms = now_ms();
    Ok(apply_outcome(state, &call, outcome, &ctx, jitter()))
}

fn jitter() -> f64 {
    // Sub-second clock noise is enough to spread retries; no RNG dependency needed.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::admission::{admit, Policy};
    use baton_core::machine::Next;
    use baton_core::plan::script_spec;

    use crate::ScriptPlanner;

    fn run(steps: &[(&str, &str)]) -> RunState {
        admit("run-1", "t", "", script_spec(steps), &Policy::default(), 1).unwrap()
    }

    /// Executes the next step with the built-in tools, a fresh token and a fixed clock.
    async fn exec(s: RunState, limits: StepLimits, now: i64) -> Transition {
        execute_step(
            s,
            &ScriptPlanner,
            &ToolRegistry::builtins(),
            limits,
            ctx(),
            &CancellationToken::new(),
            move || now,
        )
        .await
        .unwrap()
    }

    fn ctx() -> StepContext {
        StepContext { worker: "w".into(), fence: 1, started_at_ms: 1, now_ms: 2, retry_tiers_ms: Vec::new() }
    }

    fn limits() -> StepLimits {
        StepLimits { step_timeout: Duration::from_secs(5), max_output_bytes: 1024 }
    }

    #[tokio::test]
    async fn echo_step_records_output_with_its_key() {
        let s = run(&[("echo", r#"{"x":1}"#), ("echo", "{}")]);
        let t = exec(s, limits(), 3).await;
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 });
        let out: serde_json::Value = serde_json::from_str(&t.state.steps[0].output_json).unwrap();
        assert_eq!(out["echo"]["x"], 1);
        assert_eq!(out["idempotency_key"], "run-1:0");
    }

    #[tokio::test]
    async fn a_tool_outside_the_allowed_list_is_refused() {
        let mut s = run(&[("echo", "{}")]);
        s.spec.as_mut().unwrap().allowed_tools = vec!["sleep".into()];
        let t = exec(s, limits(), 3).await;
        assert_eq!(t.state.status(), RunStatus::Refused);
        assert_eq!(t.state.stop_reason.unwrap().code, "tool_not_allowed");
    }

    #[tokio::test]
    async fn oversized_output_fails_the_step() {
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(2000));
        let s = run(&[("echo", &big)]);
        let t = exec(s, limits(), 3).await;
        assert_eq!(t.state.status(), RunStatus::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_tool_times_out_as_retryable() {
        let s = run(&[("sleep", r#"{"ms":60000}"#)]);
        let l = StepLimits { step_timeout: Duration::from_millis(100), max_output_bytes: 1024 };
        let t = exec(s, l, 3).await;
        assert!(matches!(t.next, Next::Retry { step: 0, attempt: 1, .. }), "{:?}", t.next);
        assert!(t.state.last_error.contains("timed out"));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_abandons_the_step() {
        let s = run(&[("sleep", r#"{"ms":60000}"#)]);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            c.cancel();
        });
        let r = execute_step(s, &ScriptPlanner, &ToolRegistry::builtins(), limits(), ctx(), &cancel, || 3).await;
        assert_eq!(r.unwrap_err(), Abandoned);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_is_cut_at_the_run_deadline() {
        let mut s = run(&[("sleep", r#"{"ms":60000}"#)]);
        s.deadline_at_ms = 1_000;
        let t = exec(s, limits(), 1_001).await;
        assert_eq!(t.state.status(), RunStatus::TimedOut);
        assert_eq!(t.state.stop_reason.unwrap().code, "deadline");
    }

    #[tokio::test]
    async fn past_deadline_times_out_without_calling_the_tool() {
        let mut s = run(&[("echo", "{}")]);
        s.deadline_at_ms = 1;
        let t = exec(s, limits(), 3).await;
        assert_eq!(t.state.status(), RunStatus::TimedOut);
        assert!(t.state.steps.is_empty());
    }
}
