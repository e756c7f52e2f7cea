//! One bounded step, in two halves; the worker commits between them.
//!
//! [`plan`]: bounds → ask the planner → its arguments made canonical → the runtime judges the
//! proposal (allowed, known, not disabled, schema, policy, not a repeat, autonomy, approval,
//! budgets) → either nothing runs ([`Planned::Done`]: a finish, rejection, draft, approval
//! request, over-budget proposal or planner failure to commit) or a call is accepted
//! ([`Planned::Execute`]).
//! [`execute`]: check the call's approval binding, operator switches and circuit breaker, note a
//! side effect for the `duplicate_call` check, run its tool under a timeout and cancellation →
//! the transition to commit. A non-idempotent
//! external call that ends without an answer is not retried: the run waits for reconciliation.
//! "The model proposes, the runtime decides" happens here.

use std::time::Duration;

use baton_core::approval::{self, ApprovalPolicy};
use baton_core::budget;
use baton_core::catalog::Catalog;
use baton_core::judge::{judge, Gates, Rule, Verdict};
use baton_core::machine::{apply_outcome, finish, Outcome, StepContext, Transition};
use baton_core::plan::{Action, Proposal};
use baton_core::proposal::{accept, conclude, draft, over_budget, reject, Unrun};
use baton_core::step_idempotency_key;
use baton_proto::v1::{RunState, RunStatus, ToolCall, ToolInfo};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::metric_definitions as m;
use crate::{Breakers, Gate, Invocation, PlanRequest, Planner, ToolError, ToolRegistry};

/// Per-step limits from the worker's config.
#[derive(Debug, Clone, Copy)]
pub struct StepLimits {
    /// Longest one tool call may take.
    pub step_timeout: Duration,
    /// Largest tool output accepted, bytes.
    pub max_output_bytes: usize,
    /// Largest arguments a planner may propose, bytes.
    pub max_args_bytes: usize,
    /// How long a scripted or committed call of a disabled tool waits before it is tried again.
    pub held_retry: Duration,
}

/// What a step runs against: the tool catalog, the tenant policy rules, the tool adapters.
pub struct StepEnv<'a> {
    /// Every tool the fleet knows, with schemas.
    pub catalog: &'a Catalog,
    /// Tenant policy rules.
    pub rules: &'a [Rule],
    /// Adapters that call the tools.
    pub tools: &'a ToolRegistry,
    /// Limits.
    pub limits: StepLimits,
    /// Operator switches on tools (disabled, approval required).
    pub gates: &'a Gates,
    /// Approval expiry and denial settings.
    pub approvals: &'a ApprovalPolicy,
    /// The fleet's circuit breakers (asked about manifest tools only).
    pub breakers: &'a dyn Breakers,
}

/// The step stopped without an outcome to commit (its cancellation token fired): the lease was
/// lost, the run was stopped, or the worker is shutting down. Nothing of it may be written; the
/// run comes back as it was given, for a stop or a hand-back to apply to.
#[derive(Debug, Clone, PartialEq)]
pub struct Abandoned(pub Box<RunState>);

/// What planning a step decided.
#[derive(Debug)]
pub enum Planned {
    /// Nothing runs: commit this.
    Done(Transition),
    /// Run `call` next. `proposal` is the run with the call accepted; when it has events (a
    /// planner's proposal, not a script's, which its spec already holds), it must be committed
    /// before the tool runs, so a retry or recovery runs exactly this call.
    Execute {
        /// The run with the call accepted (its `next` is `Next::Execute`).
        proposal: Transition,
        /// The accepted call.
        call: ToolCall,
    },
}

/// Asks the run's planner for step `state.next_step` (showing it the run's `history`) and judges
/// the proposal.
pub async fn plan(
    state: RunState,
    history: &[baton_proto::v1::StepRecord],
    planner: &dyn Planner,
    env: &StepEnv<'_>,
    ctx: &StepContext,
    cancel: &CancellationToken,
    now_ms: impl Fn() -> i64,
) -> Result<Planned, Abandoned> {
    let done = |t| Ok(Planned::Done(t));
    if let Some((status, why)) = budget::before_step(&state, ctx.now_ms) {
        return done(finish(state, status, why, ctx.now_ms));
    }
    let scripted = baton_core::plan::is_script(&state);
    if !scripted {
        if let Some((status, why)) = budget::before_planner_call(&state) {
            return done(finish(state, status, why, ctx.now_ms));
        }
    }
    let request = PlanRequest {
        state: &state,
        history,
        tools: if scripted { Vec::new() } else { allowed_tools(&state, env.catalog) },
        tokens_left: budget::tokens_left(&state),
    };
    let asking = std::time::Instant::now();
    // A script is read in-process; any other planner is a call out, with its own span.
    let span = if scripted {
        tracing::Span::none()
    } else {
        let kind = state.spec.as_ref().map_or("none", baton_core::plan::kind_name);
        tracing::info_span!("planner_call", otel.kind = "client", planner = kind)
    };
    let answer = tokio::select! {
        a = planner.propose(request).instrument(span) => Some(a),
        _ = cancel.cancelled() => None,
    };
    let Some(answer) = answer else { return Err(Abandoned(Box::new(state))) };
    if !scripted {
        record_planner_call(&state, &answer, asking.elapsed());
    }
    let ctx = StepContext { now_ms: now_ms(), ..ctx.clone() };
    let Proposal { action, usage, text } = match answer {
        Ok(p) => p,
        Err(e) => {
            let failed = Outcome::Failed {
                error: format!("planner: {}", e.message),
                retryable: e.retryable,
                retry_after_ms: e.retry_after_ms,
            };
            return done(apply_outcome(state, &ToolCall::default(), failed, &ctx, jitter()));
        }
    };
    let mut call = match action {
        Action::Finish(result) => {
            if let Some(stop) = budget::after_spending(&state, &usage) {
                return done(past_budget(state, Unrun::Finish(&result), String::new(), usage, stop, &ctx));
            }
            return done(conclude(state, result, usage, &ctx));
        }
        Action::Call(call) => call,
    };
    // Recorded, hashed, compared and approved in one form: keys sorted, no whitespace.
    call.args_json = baton_core::tools::canonical_args(&call.args_json);
    if let Some(stop) = budget::after_spending(&state, &usage) {
        return done(past_budget(state, Unrun::Call(&call), text, usage, stop, &ctx));
    }
    if call.args_json.len() > env.limits.max_args_bytes {
        let message =
            format!("arguments are {} bytes, the limit is {}", call.args_json.len(), env.limits.max_args_bytes);
        return done(reject(state, &call, baton_core::judge::code::INVALID_ARGS, message, usage, &ctx));
    }
    let verdict = judge(&state, &call, env.catalog, env.rules, env.gates);
    let (label, reason) = match &verdict {
        Verdict::Execute(_) => ("accepted", ""),
        Verdict::Reject { code, .. } => ("rejected", *code),
        Verdict::Draft { code, .. } => ("drafted", *code),
        Verdict::NeedsApproval { required_by } => ("needs_approval", *required_by),
    };
    metrics::counter!(m::PROPOSALS, "verdict" => label, "reason" => reason).increment(1);
    match verdict {
        Verdict::Reject { code, message } if scripted && code == baton_core::judge::code::TOOL_DISABLED => {
            // A script cannot try another way: its step waits until the tool is enabled again.
            done(held(state, &call, message, env, &ctx))
        }
        Verdict::Reject { code, message } => done(reject(state, &call, code, message, usage, &ctx)),
        Verdict::Draft { code, message } => done(draft(state, &call, code, message, usage, &ctx)),
        Verdict::NeedsApproval { required_by } => {
            if let Some(stop) = budget::before_tool_call(&state) {
                return done(past_budget(state, Unrun::Call(&call), text, usage, stop, &ctx));
            }
            done(approval::request(state, &call, usage, text, required_by, env.approvals, &ctx))
        }
        Verdict::Execute(_) => {
            if let Some(stop) = budget::before_tool_call(&state) {
                return done(past_budget(state, Unrun::Call(&call), text, usage, stop, &ctx));
            }
            let proposal = accept(state, &call, usage, text, &ctx);
            Ok(Planned::Execute { proposal, call })
        }
    }
}

/// Runs the accepted `call` for step `state.next_step` and returns the transition to commit.
/// A recovered step with a committed proposal comes here directly: the planner is not asked again.
pub async fn execute(
    mut state: RunState,
    call: ToolCall,
    env: &StepEnv<'_>,
    mut ctx: StepContext,
    cancel: &CancellationToken,
    now_ms: impl Fn() -> i64,
) -> Result<Transition, Abandoned> {
    let stop = budget::before_step(&state, ctx.now_ms).or_else(|| budget::before_tool_call(&state));
    if let Some((status, why)) = stop {
        return Ok(finish(state, status, why, ctx.now_ms));
    }
    if let Err(e) = approval::verify(&state, &call) {
        return Ok(apply_outcome(state, &call, Outcome::fatal(e), &ctx, jitter()));
    }
    if env.gates.disabled.contains(&call.tool) {
        let message = format!("tool {:?} is disabled by an operator", call.tool);
        return Ok(held(state, &call, message, env, &ctx));
    }
    // Checked again: the manifest may have changed since the call was accepted.
    let args = match env.catalog.check_args(&call.tool, &call.args_json) {
        Ok(args) => args,
        Err(e) => return Ok(apply_outcome(state, &call, Outcome::fatal(e.to_string()), &ctx, jitter())),
    };
    if call.tool == baton_core::tools::WAIT_TOOL {
        // Not a tool call: the runtime parks the run on a timer and frees the worker.
        if let Ok(wake_at_ms) = baton_core::tools::wait_until(&args, ctx.now_ms) {
            return Ok(apply_outcome(state, &call, Outcome::Waiting { wake_at_ms }, &ctx, jitter()));
        }
    }
    let Some(tool) = env.tools.get(&call.tool) else {
        let error = format!("this worker has no adapter for tool {:?}", call.tool);
        return Ok(apply_outcome(state, &call, Outcome::fatal(error), &ctx, jitter()));
    };
    let invocation = Invocation {
        run_id: state.run_id.clone(),
        tenant: state.tenant.clone(),
        step: state.next_step,
        attempt: state.attempt,
        idempotency_key: step_idempotency_key(&state.run_id, state.next_step),
        fence: ctx.fence,
        args,
        cancel: cancel.child_token(),
    };
    let def = env.catalog.get(&call.tool).map(|t| &t.def);
    // Manifest tools (they have a timeout) have a breaker; built-ins do not.
    let call_timeout_ms = def.and_then(|d| d.adapter.timeout_ms());
    let guarded = call_timeout_ms.is_some();
    let uncertain_if_interrupted = def.is_some_and(|d| d.uncertain_if_interrupted());
    let gate = match call_timeout_ms {
        Some(ms) => env.breakers.allow(&call.tool, ms).await,
        None => Gate::Closed,
    };
    if let Gate::Open(until_ms) = gate {
        metrics::counter!(m::TOOL_CALLS, "tool" => call.tool.clone(), "outcome" => "breaker_open").increment(1);
        let error = format!("circuit breaker of tool {:?} is open: the tool is failing across the fleet", call.tool);
        return Ok(apply_outcome(state, &call, Outcome::Held { error, until_ms }, &ctx, jitter()));
    }
    if def.is_some_and(|d| d.refuses_repeats()) {
        // The call goes out now: a planner proposing it again is refused (`duplicate_call`).
        baton_core::repeats::remember(&mut state, &call);
    }
    // A step never outlives its run's deadline.
    let limits = env.limits;
    let until_deadline = Duration::from_millis((state.deadline_at_ms - ctx.now_ms).max(0) as u64);
    let deadline_first = state.deadline_at_ms > 0 && until_deadline < limits.step_timeout;
    let timeout = if deadline_first { until_deadline } else { limits.step_timeout };
    let calling = std::time::Instant::now();
    let span =
        tracing::info_span!("tool_call", otel.kind = "client", tool = %call.tool, outcome = tracing::field::Empty);
    let result = tokio::time::timeout(timeout, tool.invoke(invocation)).instrument(span.clone()).await;
    if cancel.is_cancelled() {
        return Err(Abandoned(Box::new(state)));
    }
    let outcome_label = match &result {
        Err(_) => "timeout",
        Ok(Ok(_)) => "completed",
        Ok(Err(ToolError::Retryable { .. })) => "retryable",
        Ok(Err(ToolError::Uncertain(_))) => "uncertain",
        Ok(Err(ToolError::Fatal(_))) => "fatal",
        Ok(Err(ToolError::Cancelled)) => "cancelled",
    };
    if guarded {
        // The tool answered (even with a 4xx): healthy. No answer, or a 5xx/429: a failure.
        let ok = matches!(result, Ok(Ok(_)) | Ok(Err(ToolError::Fatal(_))));
        if !ok || gate == Gate::Probe {
            env.breakers.record(&call.tool, ok).await;
        }
    }
    span.record("outcome", outcome_label);
    metrics::counter!(m::TOOL_CALLS, "tool" => call.tool.clone(), "outcome" => outcome_label).increment(1);
    metrics::histogram!(m::TOOL_DURATION, "tool" => call.tool.clone()).record(calling.elapsed().as_secs_f64());
    if result.is_err() && deadline_first {
        let why = baton_core::machine::reason(
            "deadline",
            format!("wall-clock deadline passed during step {} ({})", state.next_step, call.tool),
        );
        return Ok(finish(state, RunStatus::TimedOut, why, now_ms()));
    }
    let unanswered = match &result {
        Err(_) => Some(format!("timed out after {} ms", limits.step_timeout.as_millis())),
        Ok(Err(ToolError::Uncertain(message))) => Some(message.clone()),
        _ => None,
    };
    if let (Some(message), true) = (&unanswered, uncertain_if_interrupted) {
        // Not idempotent, external, and maybe done: never repeated blindly.
        ctx.now_ms = now_ms();
        return Ok(baton_core::reconcile::unanswered(state, &call, message, &ctx));
    }
    let outcome = match result {
        Err(_) => Outcome::retryable(unanswered.unwrap_or_default()),
        Ok(Err(ToolError::Uncertain(message))) => Outcome::retryable(message),
        Ok(Err(ToolError::Cancelled)) => return Err(Abandoned(Box::new(state))),
        Ok(Err(ToolError::Retryable { message, retry_after_ms })) => {
            Outcome::Failed { error: message, retryable: true, retry_after_ms }
        }
        Ok(Err(ToolError::Fatal(error))) => Outcome::fatal(error),
        Ok(Ok(value)) => {
            let output_json = value.to_string();
            if output_json.len() > limits.max_output_bytes {
                Outcome::fatal(format!(
                    "output is {} bytes, the limit is {}",
                    output_json.len(),
                    limits.max_output_bytes
                ))
            } else {
                Outcome::Completed { output_json }
            }
        }
    };
    ctx.now_ms = now_ms();
    Ok(apply_outcome(state, &call, outcome, &ctx, jitter()))
}

/// The call is not made now (its tool is disabled): the step is tried again after
/// `held_retry`, without spending an attempt.
fn held(state: RunState, call: &ToolCall, error: String, env: &StepEnv<'_>, ctx: &StepContext) -> Transition {
    let until_ms = ctx.now_ms + env.limits.held_retry.as_millis() as i64;
    apply_outcome(state, call, Outcome::Held { error, until_ms }, ctx, jitter())
}

fn record_planner_call(state: &RunState, answer: &Result<Proposal, crate::PlannerError>, took: Duration) {
    let planner = state.spec.as_ref().map_or("none", baton_core::plan::kind_name);
    let outcome = match answer {
        Ok(p) => {
            let lane = state.lane.clone();
            metrics::counter!(m::TOKENS, "direction" => "input", "lane" => lane.clone())
                .increment(p.usage.input_tokens);
            metrics::counter!(m::TOKENS, "direction" => "output", "lane" => lane.clone())
                .increment(p.usage.output_tokens);
            metrics::counter!(m::COST, "lane" => lane).increment(p.usage.cost_micros);
            "ok"
        }
        Err(e) if e.retryable => "retryable",
        Err(_) => "fatal",
    };
    metrics::counter!(m::PLANNER_CALLS, "planner" => planner, "outcome" => outcome).increment(1);
    metrics::histogram!(m::PLANNER_DURATION, "planner" => planner).record(took.as_secs_f64());
}

/// The run's allowed tools as planners see them (name, description, schema).
fn allowed_tools(state: &RunState, catalog: &Catalog) -> Vec<ToolInfo> {
    let names = state.spec.as_ref().map(|s| s.allowed_tools.as_slice()).unwrap_or_default();
    names.iter().filter_map(|n| catalog.info(n)).collect()
}

/// The proposal went past a budget: it is recorded with its spend, not run, and the run ends.
fn past_budget(
    state: RunState,
    proposed: Unrun<'_>,
    text: String,
    usage: baton_proto::v1::Usage,
    (status, why): (RunStatus, baton_proto::v1::StopReason),
    ctx: &StepContext,
) -> Transition {
    let code = match why.code.as_str() {
        "max_tokens" => "max_tokens",
        "max_cost" => "max_cost",
        "max_tool_calls" => "max_tool_calls",
        _ => "other",
    };
    metrics::counter!(m::PROPOSALS, "verdict" => "over_budget", "reason" => code).increment(1);
    over_budget(state, proposed, text, usage, status, why, ctx)
}

fn jitter() -> f64 {
    // Sub-second clock noise is enough to spread retries; no RNG dependency needed.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests;
