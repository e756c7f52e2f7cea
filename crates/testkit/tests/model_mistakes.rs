//! What a small real model gets wrong, reproduced with the scripted model server against the
//! real services, and how the runtime contains it: a tool call written as the reply's text is
//! judged as a proposal instead of becoming the run's result; a write proposed again verbatim is
//! rejected `duplicate_call`; a proposal past a budget is recorded with its spend; an advisory
//! run ends after its first draft; arguments are stored canonical; the request a model gets is
//! bounded by its endpoint's history policy.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_proto::v1::{AutonomyLevel, Budget, EventKind, GetRunRequest, Run, RunEvent, RunStatus, StepOutcome};
use baton_testkit::agents::{model_run, with_autonomy, with_budget, AgentStack};
use baton_testkit::model_server::Reply;
use baton_testkit::runs::{check_history, submit, watch_to_end};

const WITHIN: Duration = Duration::from_secs(60);

/// Watches the run to its end, checks its history, and returns the run and its events.
async fn finish(a: &AgentStack, run_id: &str) -> (Run, Vec<RunEvent>) {
    let mut client = a.stack.client().await;
    let events = watch_to_end(&mut client, run_id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    check_history(&events).unwrap_or_else(|e| panic!("{e}: {events:#?}"));
    let run = client.get_run(GetRunRequest { run_id: run_id.into(), latest_steps: 0 }).await.unwrap().into_inner();
    (run, events)
}

fn outcomes(run: &Run) -> Vec<(StepOutcome, String)> {
    run.steps.iter().map(|s| (s.outcome(), s.reason_code.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_models_mistakes_are_judged_not_passed_as_results() {
    let a = AgentStack::start("model-mistakes", |opts| {
        // A second endpoint on the same server with a tight history policy.
        let base = opts.config_toml.lines().find(|l| l.starts_with("base_url")).unwrap().to_string();
        opts.config_toml.push_str(&format!(
            "\n[models.short]\n{base}\nmodel = \"scripted-short\"\nhistory_recent_steps = 2\nhistory_budget_tokens = 0\nhistory_max_steps = 2\n"
        ));
    })
    .await;
    let mut client = a.stack.client().await;
    let m = &a.model;
    // (a) The call is the reply's text (a fence, then bare JSON naming a tool that does not exist).
    m.script(
        "text calls",
        vec![
            Reply::text(
                "Let me look.\n```json\n{\"name\": \"lookup_order\", \"arguments\": {\"order_id\": \"A1\"}}\n```",
            ),
            Reply::text(r#"{"name": "cancel_order", "arguments": {"order_id": "A1"}}"#),
            Reply::text("A1 is in transit; I cancelled it."),
        ],
    );
    // (b, d) The same refund again with its keys reordered; a note (allow_repeats) twice.
    m.script(
        "refund twice",
        vec![
            Reply::call("refund", r#"{"order_id": "D1", "amount": 20}"#),
            Reply::call("refund", "{\"amount\":20,\n  \"order_id\":\"D1\"}"),
            Reply::call("add_note", r#"{"text":"refunded"}"#),
            Reply::call("add_note", r#"{"text":"refunded"}"#),
            Reply::text("Refunded 20 on D1."),
        ],
    );
    // (e) The second proposal's tokens pass the budget.
    m.script(
        "over budget",
        vec![Reply::call("lookup_order", r#"{"order_id":"X"}"#), Reply::call("ship_order", r#"{"order_id":"X"}"#)],
    );
    // (f) An advisory run looks up, proposes a write, and would go on proposing.
    m.script(
        "advise only",
        vec![
            Reply::call("lookup_order", r#"{"order_id":"D4"}"#),
            Reply::call("ship_order", r#"{"order_id":"D4"}"#),
            Reply::call("ship_order", r#"{"order_id":"D4"}"#),
            Reply::text("ship D4"),
        ],
    );
    let steps: Vec<Reply> = (0..5).map(|i| Reply::call("lookup_order", &format!(r#"{{"order_id":"H{i}"}}"#))).collect();
    m.script("long history", steps.into_iter().chain([Reply::text("done")]).collect());

    let text_calls = submit(&mut client, model_run("text calls", &["lookup_order"]), "").await;
    let refunds = submit(&mut client, model_run("refund twice", &["refund", "add_note"]), "").await;
    let tight = Budget { max_tokens: 200, ..Default::default() };
    let over =
        submit(&mut client, with_budget(model_run("over budget", &["lookup_order", "ship_order"]), tight), "").await;
    let advisory = with_autonomy(model_run("advise only", &["lookup_order", "ship_order"]), AutonomyLevel::Advisory);
    let advised = submit(&mut client, advisory, "").await;
    let short = baton_core::plan::model_spec("short", "long history", &["lookup_order"]);
    let long = submit(&mut client, short, "").await;

    // (a) The fenced call ran as a judged proposal; the unknown one was rejected and fed back;
    // only the final prose is the result, and the stop reason says what really ran.
    let (run, _) = finish(&a, &text_calls).await;
    assert_eq!(run.status(), RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.result, "A1 is in transit; I cancelled it.");
    assert_eq!(
        outcomes(&run),
        vec![(StepOutcome::Completed, String::new()), (StepOutcome::Rejected, "unknown_tool".into())]
    );
    assert_eq!((run.steps[0].tool.as_str(), run.steps[0].args_json.as_str()), ("lookup_order", r#"{"order_id":"A1"}"#));
    assert_eq!(run.steps[0].model_text, "Let me look.");
    let why = run.stop_reason.unwrap();
    assert_eq!(why.message, "the planner finished the run after 2 steps: 1 tool call made, 1 proposal rejected");
    let calls = a.tools.calls("lookup_order");
    assert_eq!(calls.iter().filter(|c| c.idempotency_key == format!("{text_calls}:0")).count(), 1);
    let fed_back = &m.requests("text calls")[2]["messages"];
    assert!(
        fed_back[4]["content"].as_str().unwrap().starts_with("rejected by the runtime (unknown_tool)"),
        "{fed_back}"
    );

    // (b, d) The repeated refund never reached the tool; the repeatable note did; every stored
    // argument is canonical.
    let (run, events) = finish(&a, &refunds).await;
    assert_eq!(run.status(), RunStatus::Succeeded, "{run:#?}");
    assert_eq!(
        outcomes(&run),
        vec![
            (StepOutcome::Completed, String::new()),
            (StepOutcome::Rejected, "duplicate_call".into()),
            (StepOutcome::Completed, String::new()),
            (StepOutcome::Completed, String::new()),
        ]
    );
    assert!(run.steps[1].error.contains("step 0 already made this exact call of \"refund\""), "{}", run.steps[1].error);
    assert_eq!(a.tools.calls("refund").iter().filter(|c| c.idempotency_key.starts_with(&refunds)).count(), 1);
    assert_eq!(a.tools.calls("add_note").iter().filter(|c| c.idempotency_key.starts_with(&refunds)).count(), 2);
    assert_eq!(run.steps[1].args_json, r#"{"amount":20,"order_id":"D1"}"#);
    let proposed: Vec<&str> =
        events.iter().filter(|e| e.kind() == EventKind::StepProposed).map(|e| e.args_json.as_str()).collect();
    assert_eq!(proposed[0], r#"{"amount":20,"order_id":"D1"}"#, "the proposal is stored canonical");

    // (e) The proposal that passed the token budget is a step with its spend, not a silent charge.
    let (run, events) = finish(&a, &over).await;
    assert_eq!(run.status(), RunStatus::BudgetExhausted);
    assert_eq!(
        outcomes(&run),
        vec![(StepOutcome::Completed, String::new()), (StepOutcome::Rejected, "max_tokens".into())]
    );
    let last = &run.steps[1];
    assert_eq!(
        (last.tool.as_str(), last.usage.unwrap().input_tokens, last.usage.unwrap().output_tokens),
        ("ship_order", 100, 20)
    );
    let spend = run.usage.unwrap();
    assert_eq!((spend.input_tokens, spend.output_tokens, spend.tool_calls), (200, 40, 1));
    let kinds: Vec<EventKind> = events.iter().rev().take(2).map(RunEvent::kind).collect();
    assert_eq!(kinds, [EventKind::RunFinished, EventKind::ProposalRejected]);
    assert!(a.tools.calls("ship_order").is_empty(), "nothing past the budget ran");

    // (f) The advisory run stops at its first draft instead of drafting until max_steps.
    let (run, _) = finish(&a, &advised).await;
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert_eq!(run.stop_reason.as_ref().unwrap().code, "advice_ready");
    assert_eq!(
        outcomes(&run),
        vec![(StepOutcome::Completed, String::new()), (StepOutcome::Drafted, "autonomy_advisory".into())]
    );
    assert_eq!(run.result, r#"{"draft":{"args":{"order_id":"D4"},"tool":"ship_order"}}"#);
    assert_eq!(m.requests("advise only").len(), 2, "the model was not asked again");

    // The history policy: after 5 steps the model sees the goal, a note, and its last 2 steps.
    let (run, _) = finish(&a, &long).await;
    assert_eq!((run.status(), run.steps.len()), (RunStatus::Succeeded, 5));
    let last = m.requests("long history").pop().unwrap();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2 + 2 * 2, "{messages:#?}");
    assert!(messages[1]["content"].as_str().unwrap().starts_with("[3 earlier steps of this run are not shown"));
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_3");
}
