//! Unit tests of one step: plan and execute with the built-in tools, scripted planners and a
//! fixed clock.

use super::*;
use baton_core::admission::{admit, Policy};
use baton_core::machine::Next;
use baton_core::plan::script_spec;
use baton_proto::v1::StepOutcome;

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
    StepEnv { catalog, rules: &[], tools, limits, gates: &GATES, approvals: &APPROVALS, breakers: &crate::NoBreakers }
}

/// Plans and executes the next step with the built-in tools, a token and a fixed clock.
async fn step(s: RunState, limits: StepLimits, now: i64, cancel: &CancellationToken) -> Result<Transition, Abandoned> {
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
    let usage = baton_proto::v1::Usage { input_tokens: 90, output_tokens: 10, model_calls: 1, ..Default::default() };
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
    let p =
        plan(model_run(Default::default()), &[], &Fixed(Err(busy)), &env, &c, &CancellationToken::new(), || 5).await;
    let t = done(p.unwrap());
    assert!(matches!(t.next, Next::Retry { delay_ms: 10_000, .. }), "{:?}", t.next);
    let t = done(plan_with(model_run(Default::default()), Err(crate::PlannerError::fatal("400 bad request"))).await);
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

#[tokio::test]
async fn an_over_budget_proposal_is_recorded_as_a_step_with_its_spend() {
    let tight = baton_proto::v1::Budget { max_tokens: 50, ..Default::default() };
    let t = done(plan_with(model_run(tight), call("echo", r#"{"b":1, "a":2}"#)).await);
    assert_eq!(t.state.status(), RunStatus::BudgetExhausted);
    let rec = &t.state.steps[0];
    assert_eq!((rec.outcome(), rec.reason_code.as_str()), (StepOutcome::Rejected, "max_tokens"));
    assert_eq!(
        (rec.tool.as_str(), rec.args_json.as_str(), rec.model_text.as_str()),
        ("echo", r#"{"a":2,"b":1}"#, "thinking")
    );
    assert_eq!(rec.usage.unwrap().input_tokens, 90);
    assert_eq!(t.events[0].kind(), baton_proto::v1::EventKind::ProposalRejected);
    let mut spent = model_run(baton_proto::v1::Budget { max_tool_calls: 1, ..Default::default() });
    spent.usage = Some(baton_proto::v1::Usage { tool_calls: 1, ..Default::default() });
    let t = done(plan_with(spent, call("echo", "{}")).await);
    assert_eq!(t.state.stop_reason.as_ref().unwrap().code, "max_tool_calls");
    assert_eq!((t.state.steps[0].reason_code.as_str(), t.state.usage.unwrap().input_tokens), ("max_tool_calls", 90));
}

/// A write tool for the tests: counts its calls.
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicU32);

impl crate::Tool for std::sync::Arc<Counting> {
    fn invoke(&self, _call: crate::Invocation) -> crate::BoxFuture<'static, Result<serde_json::Value, ToolError>> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Box::pin(async move { Ok(serde_json::json!({ "calls": n })) })
    }
}

#[tokio::test]
async fn a_planner_repeating_an_executed_write_is_refused_and_args_are_stored_canonical() {
    let mut spec = baton_core::plan::model_spec("m", "goal", &["ledger", "echo"]);
    spec.budget = Some(Default::default());
    let policy = Policy { models: vec!["m".into()], ..Policy::default() };
    let catalog = Catalog::builtins();
    let s = admit("run-d", "t", "", spec, &policy, &catalog, 1).unwrap();
    let ledger = std::sync::Arc::new(Counting::default());
    let mut tools = ToolRegistry::builtins();
    tools.register("ledger", std::sync::Arc::new(ledger.clone()));
    let env = env(&catalog, &tools, limits());
    let cancel = CancellationToken::new();
    let mut state = s;
    let mut verdicts = Vec::new();
    for args in
        [r#"{"order": "B7", "amount": 20}"#, "{\"amount\":20,\n\"order\":\"B7\"}", r#"{"amount":21,"order":"B7"}"#]
    {
        let planned = plan(state, &[], &Fixed(call("ledger", args)), &env, &ctx(), &cancel, || 5).await.unwrap();
        let t = match planned {
            Planned::Done(t) => t,
            Planned::Execute { proposal, call } => {
                assert_eq!(proposal.events[0].args_json, call.args_json, "the proposal is recorded as called");
                assert!(!call.args_json.contains(' '), "canonical: {}", call.args_json);
                execute(proposal.state, call, &env, ctx(), &cancel, || 6).await.unwrap()
            }
        };
        let last = t.state.steps.last().unwrap();
        verdicts.push((last.outcome(), last.reason_code.clone(), last.args_json.clone()));
        state = t.state;
    }
    assert_eq!(
        verdicts,
        vec![
            (StepOutcome::Completed, String::new(), r#"{"amount":20,"order":"B7"}"#.to_string()),
            (StepOutcome::Rejected, "duplicate_call".to_string(), r#"{"amount":20,"order":"B7"}"#.to_string()),
            (StepOutcome::Completed, String::new(), r#"{"amount":21,"order":"B7"}"#.to_string()),
        ]
    );
    assert!(state.steps[1].error.contains("step 0 already made this exact call"), "{}", state.steps[1].error);
    assert_eq!(ledger.0.load(std::sync::atomic::Ordering::SeqCst), 2, "the repeat never ran");
    assert_eq!(state.made_calls.iter().map(|m| m.step).collect::<Vec<_>>(), vec![0, 2]);
    for _ in 0..2 {
        let Planned::Execute { proposal, call } =
            plan(state, &[], &Fixed(call("echo", "{}")), &env, &ctx(), &cancel, || 5).await.unwrap()
        else {
            panic!("a read may repeat")
        };
        state = execute(proposal.state, call, &env, ctx(), &cancel, || 6).await.unwrap().state;
    }
    assert_eq!(state.made_calls.len(), 2, "reads are not remembered");
}

#[tokio::test]
async fn an_advisory_run_ends_with_its_first_draft() {
    let mut s = model_run(Default::default());
    s.spec.as_mut().unwrap().autonomy = baton_proto::v1::AutonomyLevel::Advisory as i32;
    s.spec.as_mut().unwrap().allowed_tools.push("ledger".into());
    let t = done(plan_with(s, call("ledger", r#"{"refund": 20}"#)).await);
    assert_eq!(t.next, Next::Nothing, "not asked again");
    assert_eq!(t.state.status(), RunStatus::Succeeded);
    assert_eq!(t.state.stop_reason.as_ref().unwrap().code, "advice_ready");
    assert_eq!(t.state.result, r#"{"draft":{"args":{"refund":20},"tool":"ledger"}}"#);
    assert_eq!(t.state.steps[0].outcome(), StepOutcome::Drafted);
}
