//! One bounded step, in two halves; the worker commits between them.
//!
//! [`plan`]: bounds → ask the planner → the runtime judges the proposal (allowed, known, not
//! disabled, schema, policy, autonomy, approval, budgets) → either nothing runs
//! ([`Planned::Done`]: a finish, rejection, draft, approval request or planner failure to
//! commit) or a call is accepted ([`Planned::Execute`]).
//! [`execute`]: check the call's approval binding, operator switches and circuit breaker, run
//! its tool under a timeout and cancellation → the transition to commit. A non-idempotent
//! external call that ends without an answer is not retried: the run waits for reconciliation.
//! "The model proposes, the runtime decides" happens here.

use std::time::Duration;

use baton_core::approval::{self, ApprovalPolicy};
use baton_core::budget;
use baton_core::catalog::Catalog;
use baton_core::judge::{judge, Gates, Rule, Verdict};
use baton_core::machine::{apply_outcome, finish, Outcome, StepContext, Transition};
use baton_core::plan::{Action, Proposal};
use baton_core::proposal::{accept, conclude, draft, over_budget, reject};
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
    if let Some((status, why)) = budget::after_spending(&state, &usage) {
        return done(over_budget(state, usage, status, why, &ctx));
    }
    let call = match action {
        Action::Finish(result) => return done(conclude(state, result, usage, &ctx)),
        Action::Call(call) => call,
    };
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
            if let Some((status, why)) = budget::before_tool_call(&state) {
                return done(over_budget(state, usage, status, why, &ctx));
            }
            done(approval::request(state, &call, usage, text, required_by, env.approvals, &ctx))
        }
        Verdict::Execute(_) => {
            if let Some((status, why)) = budget::before_tool_call(&state) {
                return done(over_budget(state, usage, status, why, &ctx));
            }
            let proposal = accept(state, &call, usage, text, &ctx);
            Ok(Planned::Execute { proposal, call })
        }
    }
}

/// Runs the accepted `call` for step `state.next_step` and returns the transition to commit.
/// A recovered step with a committed proposal comes here directly: the planner is not asked again.
pub async fn execute(
    state: RunState,
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
        admit("run-1", "t", "", script_spec(steps), &Policy::default(), &Catalog::builtins(), 1).unwrap()
    }

    fn ctx() -> StepContext {
        StepContext { worker: "w".into(), fence: 1, started_at_ms: 1, now_ms: 2, retry_tiers_ms: Vec::new() }
    }

    fn limits() -> StepLimits {
        StepLimits {
            step_timeout: Duration::from_secs(5),
            max_output_bytes: 1024,
            max_args_bytes: 1024,
            held_retry: Duration::from_secs(10),
        }
    }

    static GATES: std::sync::LazyLock<Gates> = std::sync::LazyLock::new(Gates::default);
    static APPROVALS: ApprovalPolicy = ApprovalPolicy {
        ttl_ms: 1_000,
        on_expiry: approval::OnExpiry::Deny,
        max_escalations: 0,
        on_deny: approval::OnDeny::FeedBack,
    };

    fn env<'a>(catalog: &'a Catalog, tools: &'a ToolRegistry, limits: StepLimits) -> StepEnv<'a> {
        StepEnv {
            catalog,
            rules: &[],
            tools,
            limits,
            gates: &GATES,
            approvals: &APPROVALS,
            breakers: &crate::NoBreakers,
        }
    }

    /// Plans and executes the next step with the built-in tools, a token and a fixed clock.
    async fn step(
        s: RunState,
        limits: StepLimits,
        now: i64,
        cancel: &CancellationToken,
    ) -> Result<Transition, Abandoned> {
        let (catalog, tools) = (Catalog::builtins(), ToolRegistry::builtins());
        let env = env(&catalog, &tools, limits);
        match plan(s, &[], &ScriptPlanner, &env, &ctx(), cancel, move || now).await? {
            Planned::Done(t) => Ok(t),
            Planned::Execute { proposal, call } => {
                assert!(proposal.events.is_empty(), "a script's proposal is not recorded");
                execute(proposal.state, call, &env, ctx(), cancel, move || now).await
            }
        }
    }

    async fn exec(s: RunState, limits: StepLimits, now: i64) -> Transition {
        step(s, limits, now, &CancellationToken::new()).await.unwrap()
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
        let l = StepLimits { max_args_bytes: 4096, ..limits() };
        let t = exec(s, l, 3).await;
        assert_eq!(t.state.status(), RunStatus::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_tool_times_out_as_retryable() {
        let s = run(&[("sleep", r#"{"ms":60000}"#)]);
        let l = StepLimits { step_timeout: Duration::from_millis(100), ..limits() };
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
        let Abandoned(back) = step(s.clone(), limits(), 3, &cancel).await.unwrap_err();
        assert_eq!(*back, s, "the run comes back as it was");
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

    /// A planner that always answers the same.
    struct Fixed(Result<Proposal, crate::PlannerError>);

    impl Planner for Fixed {
        fn propose<'a>(&'a self, _req: PlanRequest<'a>) -> crate::BoxFuture<'a, Result<Proposal, crate::PlannerError>> {
            Box::pin(async move { self.0.clone() })
        }
    }

    fn model_run(budget: baton_proto::v1::Budget) -> RunState {
        let mut spec = baton_core::plan::model_spec("m", "goal", &["sleep", "echo"]);
        spec.budget = Some(budget);
        let policy = Policy { models: vec!["m".into()], ..Policy::default() };
        admit("run-m", "t", "", spec, &policy, &Catalog::builtins(), 1).unwrap()
    }

    fn call(tool: &str, args: &str) -> Result<Proposal, crate::PlannerError> {
        let usage =
            baton_proto::v1::Usage { input_tokens: 90, output_tokens: 10, model_calls: 1, ..Default::default() };
        let action = Action::Call(ToolCall { tool: tool.into(), args_json: args.into() });
        Ok(Proposal { action, usage, text: "thinking".into() })
    }

    async fn plan_with(s: RunState, answer: Result<Proposal, crate::PlannerError>) -> Planned {
        let (catalog, tools) = (Catalog::builtins(), ToolRegistry::builtins());
        let env = env(&catalog, &tools, limits());
        plan(s, &[], &Fixed(answer), &env, &ctx(), &CancellationToken::new(), || 5).await.unwrap()
    }

    fn done(p: Planned) -> Transition {
        match p {
            Planned::Done(t) => t,
            Planned::Execute { call, .. } => panic!("{call:?} was accepted"),
        }
    }

    #[tokio::test]
    async fn a_model_proposal_is_judged_before_anything_runs() {
        let Planned::Execute { proposal, call: accepted } =
            plan_with(model_run(Default::default()), call("echo", r#"{"a":1}"#)).await
        else {
            panic!("not accepted")
        };
        assert_eq!(accepted.tool, "echo");
        assert_eq!(proposal.events[0].kind(), baton_proto::v1::EventKind::StepProposed);
        assert_eq!(proposal.state.pending.as_ref().unwrap().model_text, "thinking");
        let t = done(plan_with(model_run(Default::default()), call("sleep", r#"{"ms":"soon"}"#)).await);
        assert_eq!(t.events[0].reason_code, "invalid_args");
        assert_eq!(t.next, Next::Advance { step: 1, attempt: 0 }, "fed back, asked again");
        let t = done(plan_with(model_run(Default::default()), call("flaky", "{}")).await);
        assert_eq!(t.events[0].reason_code, "tool_not_allowed");
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(2000));
        let t = done(plan_with(model_run(Default::default()), call("echo", &big)).await);
        assert!(t.events[0].detail.contains("the limit is 1024"), "{}", t.events[0].detail);
    }

    #[tokio::test]
    async fn planner_failures_and_spend_decide_the_step() {
        let busy = crate::PlannerError { message: "429".into(), retryable: true, retry_after_ms: Some(1_500) };
        let mut c = ctx();
        c.retry_tiers_ms = vec![1_000, 10_000];
        let (catalog, tools) = (Catalog::builtins(), ToolRegistry::builtins());
        let env = env(&catalog, &tools, limits());
        let p = plan(model_run(Default::default()), &[], &Fixed(Err(busy)), &env, &c, &CancellationToken::new(), || 5)
            .await;
        let t = done(p.unwrap());
        assert!(matches!(t.next, Next::Retry { delay_ms: 10_000, .. }), "{:?}", t.next);
        let t =
            done(plan_with(model_run(Default::default()), Err(crate::PlannerError::fatal("400 bad request"))).await);
        assert_eq!(t.state.stop_reason.unwrap().code, "planner_error");
        let tight = baton_proto::v1::Budget { max_tokens: 50, ..Default::default() };
        let t = done(plan_with(model_run(tight), call("echo", "{}")).await);
        assert_eq!(t.state.status(), RunStatus::BudgetExhausted);
        assert_eq!(t.state.usage.unwrap().input_tokens, 90, "the spend is recorded");
        let finish =
            Ok(Proposal { action: Action::Finish("all done".into()), usage: Default::default(), text: String::new() });
        let t = done(plan_with(model_run(Default::default()), finish).await);
        assert_eq!((t.state.status(), t.state.result.as_str()), (RunStatus::Succeeded, "all done"));
    }
}
