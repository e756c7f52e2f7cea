//! Budgets that bind: wall clock, steps, tokens, cost, tool calls and rejections. Checked
//! before every planner call and every tool call; spend is summed after each. Exhaustion ends
//! the run `budget_exhausted` (or `timed_out` for the wall clock) with the figures in the reason.

use crate::machine::reason;
use crate::plan::is_script;
use crate::v1::{Budget, RunState, RunStatus, StopReason, Usage};

/// Adds `more` to `total`.
pub fn add(total: &mut Usage, more: &Usage) {
    total.input_tokens = total.input_tokens.saturating_add(more.input_tokens);
    total.output_tokens = total.output_tokens.saturating_add(more.output_tokens);
    total.cost_micros = total.cost_micros.saturating_add(more.cost_micros);
    total.model_calls = total.model_calls.saturating_add(more.model_calls);
    total.tool_calls = total.tool_calls.saturating_add(more.tool_calls);
    total.rejections = total.rejections.saturating_add(more.rejections);
}

/// Input plus output tokens.
pub fn tokens(usage: &Usage) -> u64 {
    usage.input_tokens.saturating_add(usage.output_tokens)
}

fn budget(state: &RunState) -> Budget {
    state.budget.unwrap_or_default()
}

fn usage(state: &RunState) -> Usage {
    state.usage.unwrap_or_default()
}

/// Why the run must stop before its next step, if it must: past its deadline, or out of steps.
pub fn before_step(state: &RunState, now_ms: i64) -> Option<(RunStatus, StopReason)> {
    if state.deadline_at_ms > 0 && now_ms >= state.deadline_at_ms {
        let why = reason("deadline", format!("wall-clock deadline passed at step {}", state.next_step));
        return Some((RunStatus::TimedOut, why));
    }
    let max_steps = budget(state).max_steps;
    // A script's own length ends it; the step budget only cuts a longer plan short.
    let past_plan = is_script(state) && state.next_step >= crate::plan::script_len(state);
    if max_steps > 0 && state.next_step >= max_steps && !past_plan {
        return Some((RunStatus::BudgetExhausted, reason("max_steps", format!("step budget of {max_steps} used up"))));
    }
    None
}

/// Why the run may not ask its planner again: its token or cost budget is spent.
pub fn before_planner_call(state: &RunState) -> Option<(RunStatus, StopReason)> {
    spend_exceeded(state, true)
}

/// Why the run's spend is over budget after its latest planner call, if it is.
pub fn after_spend(state: &RunState) -> Option<(RunStatus, StopReason)> {
    spend_exceeded(state, false)
}

/// Why the run's spend would be over budget once `more` is charged, if it would.
pub fn after_spending(state: &RunState, more: &Usage) -> Option<(RunStatus, StopReason)> {
    let mut total = usage(state);
    add(&mut total, more);
    exceeded(&budget(state), &total, false)
}

/// Why a tool may not be called now: the tool-call budget is spent.
pub fn before_tool_call(state: &RunState) -> Option<(RunStatus, StopReason)> {
    let (b, u) = (budget(state), usage(state));
    if b.max_tool_calls > 0 && u.tool_calls >= b.max_tool_calls {
        let msg = format!("tool-call budget exhausted: {} of {} tool calls made", u.tool_calls, b.max_tool_calls);
        return Some((RunStatus::BudgetExhausted, reason("max_tool_calls", msg)));
    }
    None
}

/// True when one more rejection would pass the run's rejection budget.
pub fn rejections_left(state: &RunState) -> bool {
    let (b, u) = (budget(state), usage(state));
    b.max_rejections == 0 || u.rejections < b.max_rejections
}

/// Tokens the next planner call may still produce (`None`: no token budget).
pub fn tokens_left(state: &RunState) -> Option<u64> {
    let b = budget(state);
    (b.max_tokens > 0).then(|| b.max_tokens.saturating_sub(tokens(&usage(state))))
}

/// At the limit (`at_limit`, before a call) or past it (after one).
fn spend_exceeded(state: &RunState, at_limit: bool) -> Option<(RunStatus, StopReason)> {
    exceeded(&budget(state), &usage(state), at_limit)
}

fn exceeded(b: &Budget, u: &Usage, at_limit: bool) -> Option<(RunStatus, StopReason)> {
    let (b, u) = (*b, *u);
    let over = |used: u64, max: u64| max > 0 && (used > max || (at_limit && used >= max));
    if over(tokens(&u), b.max_tokens) {
        let msg = format!(
            "token budget exhausted: {} of {} tokens used ({} in, {} out) after {} model calls",
            tokens(&u),
            b.max_tokens,
            u.input_tokens,
            u.output_tokens,
            u.model_calls
        );
        return Some((RunStatus::BudgetExhausted, reason("max_tokens", msg)));
    }
    if over(u.cost_micros, b.max_cost_micros) {
        let msg = format!(
            "cost budget exhausted: {} of {} micros spent on {} model calls",
            u.cost_micros, b.max_cost_micros, u.model_calls
        );
        return Some((RunStatus::BudgetExhausted, reason("max_cost", msg)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::plan::{model_spec, script_spec};

    fn model_run(b: Budget) -> RunState {
        let mut spec = model_spec("m", "goal", &["echo"]);
        spec.budget = Some(b);
        admit("r", "t", "", spec, &Policy::for_tests(), &crate::catalog::Catalog::builtins(), 0).unwrap()
    }

    #[test]
    fn tokens_and_cost_bind_with_figures() {
        let mut s = model_run(Budget { max_tokens: 1_000, max_cost_micros: 500, ..Default::default() });
        assert!(before_planner_call(&s).is_none());
        s.usage = Some(Usage { input_tokens: 900, output_tokens: 200, model_calls: 2, ..Default::default() });
        let (status, why) = after_spend(&s).unwrap();
        assert_eq!(status, RunStatus::BudgetExhausted);
        assert_eq!(why.code, "max_tokens");
        assert!(why.message.contains("1100 of 1000 tokens used (900 in, 200 out)"), "{}", why.message);
        s.usage = Some(Usage { input_tokens: 10, cost_micros: 500, model_calls: 1, ..Default::default() });
        assert!(after_spend(&s).is_none(), "exactly at the limit is not over it");
        let (_, why) = before_planner_call(&s).unwrap();
        assert_eq!(why.code, "max_cost");
        assert!(why.message.contains("500 of 500 micros"), "{}", why.message);
        assert_eq!(tokens_left(&s), Some(990));
    }

    #[test]
    fn tool_calls_and_rejections_bind() {
        let mut s = model_run(Budget { max_tool_calls: 2, max_rejections: 1, ..Default::default() });
        s.usage = Some(Usage { tool_calls: 2, ..Default::default() });
        assert_eq!(before_tool_call(&s).unwrap().1.code, "max_tool_calls");
        assert!(rejections_left(&s));
        s.usage = Some(Usage { rejections: 1, ..Default::default() });
        assert!(!rejections_left(&s));
    }

    #[test]
    fn steps_bind_model_runs_and_cut_scripts_short() {
        let mut s = model_run(Budget { max_steps: 3, ..Default::default() });
        s.next_step = 3;
        assert_eq!(before_step(&s, 1).unwrap().1.code, "max_steps");
        let mut spec = script_spec(&[("echo", "{}"); 5]);
        spec.budget = Some(Budget { max_steps: 2, ..Default::default() });
        let mut s = admit("r", "t", "", spec, &Policy::for_tests(), &crate::catalog::Catalog::builtins(), 0).unwrap();
        s.next_step = 2;
        assert_eq!(before_step(&s, 1).unwrap().0, RunStatus::BudgetExhausted);
        let deadline = s.deadline_at_ms;
        assert_eq!(before_step(&s, deadline).unwrap().0, RunStatus::TimedOut);
    }
}
