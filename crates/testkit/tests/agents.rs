//! Agents end to end over real processes: a scripted OpenAI-compatible model server and an
//! agent served over gRPC propose; the runtime judges every proposal (allowed, known, schema,
//! policy, autonomy, budgets) and calls real HTTP and gRPC tool servers.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{
    Budget, EventKind, GetRunRequest, ListRunsRequest, Run, RunEvent, RunStatus, StepOutcome, SubmitRunRequest,
};
use baton_testkit::agents::{eventually, model_run, with_autonomy, with_budget, with_system, AgentStack};
use baton_testkit::grpc_server::AgentReply;
use baton_testkit::model_server::{Reply, Say};
use baton_testkit::runs::{check_history, submit, watch_to_end};
use baton_testkit::tool_server::Behavior;
use baton_testkit::TempDir;
use tonic::transport::Channel;

const WITHIN: Duration = Duration::from_secs(60);

/// Watches the run to its end, checks its history, and returns the run and its events.
async fn finish(client: &mut RunServiceClient<Channel>, run_id: &str, stack: &AgentStack) -> (Run, Vec<RunEvent>) {
    let events = watch_to_end(client, run_id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.stack.logs()));
    check_history(&events).unwrap_or_else(|e| panic!("{e}: {events:#?}"));
    let run = client.get_run(GetRunRequest { run_id: run_id.into(), latest_steps: 0 }).await.unwrap().into_inner();
    (run, events)
}

fn outcomes(run: &Run) -> Vec<(StepOutcome, String)> {
    run.steps.iter().map(|s| (s.outcome(), s.reason_code.clone())).collect()
}

fn count(events: &[RunEvent], kind: EventKind) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_proposes_and_the_runtime_decides() {
    let a = AgentStack::start("agents", |_| {}).await;
    let mut client = a.stack.client().await;
    let m = &a.model;
    m.script(
        "ship order A1",
        vec![
            Reply::call("lookup_order", r#"{"order_id":"A1"}"#),
            Reply::call("ship_order", r#"{"order_id":"A1"}"#),
            Reply::text("Shipped A1"),
        ],
    );
    m.script(
        "fix your arguments",
        vec![
            Reply::call("lookup_order", r#"{"order_id":7,"password":"hunter22","note":"token s3cret"}"#),
            Reply::call("lookup_order", r#"{"order_id":"B2"}"#),
            Reply::text("found B2"),
        ],
    );
    m.script(
        "stay within bounds",
        vec![
            Reply::call("drop_database", "{}"),
            Reply::call("refund", r#"{"order_id":"C3","amount":250}"#),
            Reply::call("refund", r#"{"order_id":"C3","amount":"lots"}"#),
            Reply::text("gave up"),
        ],
    );
    m.script(
        "advise only",
        vec![
            Reply::call("ship_order", r#"{"order_id":"D4"}"#),
            Reply::call("lookup_order", r#"{"order_id":"D4"}"#),
            Reply::text("advice: ship D4"),
        ],
    );
    m.script("draft for review", vec![Reply::call("refund", r#"{"order_id":"E5","amount":20}"#)]);
    a.grpc.script(
        "agent run",
        vec![
            AgentReply::Call("notify".into(), r#"{"text":"your order shipped"}"#.into()),
            AgentReply::Finish("notified".into()),
        ],
    );

    let spec = with_system(model_run("ship order A1", &["lookup_order", "ship_order"]), "You are a support agent.");
    let shipped = submit(&mut client, spec, "").await;
    let fixed = submit(&mut client, model_run("fix your arguments", &["lookup_order"]), "").await;
    let bounded = submit(&mut client, model_run("stay within bounds", &["lookup_order", "refund"]), "").await;
    let advisory = with_autonomy(
        model_run("advise only", &["lookup_order", "ship_order"]),
        baton_proto::v1::AutonomyLevel::Advisory,
    );
    let advised = submit(&mut client, advisory, "").await;
    let review =
        with_autonomy(model_run("draft for review", &["refund"]), baton_proto::v1::AutonomyLevel::DraftsForReview);
    let drafted = submit(&mut client, review, "").await;
    let agent = baton_core::plan::agent_spec("support", "agent run", &["notify"]);
    let by_agent = submit(&mut client, agent, "").await;

    // A model-driven run end to end: proposals committed, tools called with the step's key and a
    // trace context, the model shown every result, the final reply kept as the result.
    let (run, events) = finish(&mut client, &shipped, &a).await;
    assert_eq!(run.status(), RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.result, "Shipped A1");
    assert_eq!(outcomes(&run), vec![(StepOutcome::Completed, String::new()); 2]);
    assert_eq!(count(&events, EventKind::StepProposed), 2);
    assert_eq!(events.last().unwrap().detail, "Shipped A1", "RUN_FINISHED carries the result");
    let lookups = a.tools.calls("lookup_order");
    let lookup =
        lookups.iter().find(|c| c.idempotency_key == format!("{shipped}:0")).expect("lookup called with key <run>:0");
    assert_eq!(lookup.body["order_id"], "A1");
    let tp = lookup.traceparent.clone().expect("traceparent sent");
    assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");
    let ships = a.tools.calls("ship_order");
    let ship =
        ships.iter().find(|c| c.idempotency_key == format!("{shipped}:1")).expect("ship called with key <run>:1");
    assert_eq!(ship.headers["authorization"], "Bearer s3cret", "secret header from the worker's env");
    assert_eq!(ship.headers["x-team"], "fulfilment");
    let requests = m.requests("ship order A1");
    assert_eq!(requests.len(), 3, "one completion per step");
    let roles: Vec<&str> =
        requests[2]["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant", "tool"]);
    assert!(requests[2]["messages"][3]["content"].as_str().unwrap().contains("\"order_id\":\"A1\""));
    let offered: Vec<&str> =
        requests[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(offered, ["lookup_order", "ship_order"]);
    assert_eq!(requests[0]["model"], "scripted-1");
    let spend = run.usage.unwrap();
    assert_eq!((spend.input_tokens, spend.output_tokens, spend.model_calls, spend.tool_calls), (300, 60, 3, 2));
    assert_eq!(spend.cost_micros, 3 * (100 + 2 * 20), "1.0 and 2.0 per million tokens");

    // A schema violation is fed back as a tool error; the corrected call runs.
    let (run, _) = finish(&mut client, &fixed, &a).await;
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert_eq!(
        outcomes(&run),
        vec![(StepOutcome::Rejected, "invalid_args".into()), (StepOutcome::Completed, String::new())]
    );
    assert!(run.steps[0].error.contains("/order_id"), "{}", run.steps[0].error);
    // The redaction rule: a configured field (`password`) and a secret's value (the tool
    // credential SHIP_TOKEN) never reach the run's events, on Redis or on the events topic.
    let (_, events) = finish(&mut client, &fixed, &a).await;
    let rejected = events.iter().find(|e| e.kind() == EventKind::ProposalRejected).expect("the rejection's event");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&rejected.args_json).unwrap(),
        serde_json::json!({"order_id": 7, "password": "[redacted]", "note": "token [redacted]"})
    );
    let store = a.stack.store();
    let audit =
        baton_testkit::events_audit::audit(&store, &a.stack.broker.bootstrap(), std::slice::from_ref(&fixed), WITHIN)
            .await;
    assert!(audit.missing.is_empty(), "{audit:?}");
    assert!(audit.texts.iter().any(|t| t.contains("[redacted]")), "{audit:?}");
    assert!(!audit.texts.iter().any(|t| t.contains("hunter22") || t.contains("s3cret")), "{audit:?}");
    let fed_back = &m.requests("fix your arguments")[1]["messages"][2]["content"];
    assert!(fed_back.as_str().unwrap().starts_with("rejected by the runtime (invalid_args)"), "{fed_back}");
    let calls: Vec<_> =
        a.tools.calls("lookup_order").into_iter().filter(|c| c.idempotency_key.starts_with(&fixed)).collect();
    assert_eq!(calls.len(), 1, "only the valid call ran");
    assert_eq!(calls[0].idempotency_key, format!("{fixed}:1"));

    // Unknown tools and policy caps are refused with reason codes; nothing runs.
    let (run, events) = finish(&mut client, &bounded, &a).await;
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert_eq!(
        outcomes(&run),
        vec![
            (StepOutcome::Rejected, "unknown_tool".into()),
            (StepOutcome::Rejected, "policy_cap".into()),
            (StepOutcome::Rejected, "invalid_args".into()),
        ]
    );
    assert!(run.steps[1].error.contains("refunds above 100 need a human"), "{}", run.steps[1].error);
    let reasons: Vec<&str> =
        events.iter().filter(|e| e.kind() == EventKind::ProposalRejected).map(|e| e.reason_code.as_str()).collect();
    assert_eq!(reasons, ["unknown_tool", "policy_cap", "invalid_args"]);
    assert_eq!(run.usage.unwrap().rejections, 3);
    assert!(a.tools.calls("refund").iter().all(|c| !c.idempotency_key.starts_with(&bounded)));

    // An advisory run never calls a write tool: the call is a draft, and the run ends with it.
    let (run, _) = finish(&mut client, &advised, &a).await;
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert_eq!(outcomes(&run), vec![(StepOutcome::Drafted, "autonomy_advisory".into())]);
    assert_eq!(run.stop_reason.clone().unwrap().code, "advice_ready");
    assert_eq!(a.tools.calls("ship_order").iter().filter(|c| c.idempotency_key.starts_with(&advised)).count(), 0);

    // drafts_for_review ends the run with the side effect as a draft for a human.
    let (run, _) = finish(&mut client, &drafted, &a).await;
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert_eq!(run.stop_reason.unwrap().code, "draft_ready");
    let draft: serde_json::Value = serde_json::from_str(&run.result).unwrap();
    assert_eq!(draft["draft"]["tool"], "refund");
    assert_eq!(draft["draft"]["args"]["amount"], 20);
    assert_eq!(a.tools.calls("refund").len(), 0, "no refund was ever executed");

    // The user's own agent over gRPC drives a run; a gRPC tool gets the step's key.
    let (run, _) = finish(&mut client, &by_agent, &a).await;
    assert_eq!(run.status(), RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.result, "notified");
    let invoked = a.grpc.invocations();
    assert_eq!(invoked.len(), 1);
    assert_eq!((invoked[0].tool.as_str(), invoked[0].idempotency_key.clone()), ("notify", format!("{by_agent}:0")));
    let asked = a.grpc.proposals("agent run");
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[1].history.len(), 1, "the agent sees the committed step");
    assert!(asked[1].history[0].output_json.contains("your order shipped"));
    assert_eq!(asked[0].tools[0].name, "notify");
    assert_eq!(run.usage.unwrap().input_tokens, 20, "the agent's reported spend is summed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_budgets_end_runs_with_their_figures() {
    let a = AgentStack::start("budgets", |_| {}).await;
    let mut client = a.stack.client().await;
    let again =
        || vec![Reply::call("lookup_order", r#"{"order_id":"X"}"#), Reply::call("lookup_order", r#"{"order_id":"Y"}"#)];
    for goal in ["tokens", "cost", "tool calls"] {
        a.model.script(goal, again());
    }
    a.model.script("rejections", vec![Reply::call("lookup_order", "{}"), Reply::call("lookup_order", "[]")]);
    let budget = |b: Budget| b;
    let tokens = submit(
        &mut client,
        with_budget(model_run("tokens", &["lookup_order"]), budget(Budget { max_tokens: 200, ..Default::default() })),
        "",
    )
    .await;
    let cost = submit(
        &mut client,
        with_budget(model_run("cost", &["lookup_order"]), Budget { max_cost_micros: 200, ..Default::default() }),
        "",
    )
    .await;
    let calls = submit(
        &mut client,
        with_budget(model_run("tool calls", &["lookup_order"]), Budget { max_tool_calls: 1, ..Default::default() }),
        "",
    )
    .await;
    let rejections = submit(
        &mut client,
        with_budget(model_run("rejections", &["lookup_order"]), Budget { max_rejections: 1, ..Default::default() }),
        "",
    )
    .await;

    let (run, events) = finish(&mut client, &tokens, &a).await;
    assert_eq!(run.status(), RunStatus::BudgetExhausted);
    let why = run.stop_reason.unwrap();
    assert_eq!(why.code, "max_tokens");
    assert_eq!(why.message, "token budget exhausted: 240 of 200 tokens used (200 in, 40 out) after 2 model calls");
    assert_eq!(run.steps.len(), 2, "the over-budget proposal is recorded");
    assert_eq!((run.steps[1].outcome(), run.steps[1].reason_code.as_str()), (StepOutcome::Rejected, "max_tokens"));
    assert_eq!(a.tools.calls("lookup_order").iter().filter(|c| c.idempotency_key.starts_with(&tokens)).count(), 1);
    assert_eq!(events.last().unwrap().usage.unwrap().input_tokens, 200, "RUN_FINISHED carries the spend");

    let (run, _) = finish(&mut client, &cost, &a).await;
    assert_eq!(run.status(), RunStatus::BudgetExhausted);
    let why = run.stop_reason.unwrap();
    assert_eq!(
        (why.code.as_str(), why.message.as_str()),
        ("max_cost", "cost budget exhausted: 280 of 200 micros spent on 2 model calls")
    );

    let (run, _) = finish(&mut client, &calls, &a).await;
    assert_eq!(run.status(), RunStatus::BudgetExhausted);
    let why = run.stop_reason.unwrap();
    assert_eq!(
        (why.code.as_str(), why.message.as_str()),
        ("max_tool_calls", "tool-call budget exhausted: 1 of 1 tool calls made")
    );
    assert_eq!(a.tools.calls("lookup_order").iter().filter(|c| c.idempotency_key.starts_with(&calls)).count(), 1);

    let (run, _) = finish(&mut client, &rejections, &a).await;
    assert_eq!(run.status(), RunStatus::Refused);
    assert_eq!(run.stop_reason.unwrap().code, "max_rejections");

    // batonctl shows proposals, rejections with reason codes, tokens and cost, and the tools.
    let batonctl = |args: &[&str]| {
        let out = std::process::Command::new(baton_testkit::bin_path("batonctl"))
            .args(args)
            .env("BATON_ADDR", format!("http://127.0.0.1:{}", a.stack.grpc_port))
            .output()
            .unwrap();
        assert!(out.status.success(), "batonctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = batonctl(&["get", &rejections]);
    assert!(shown.contains("step=0 rejected tool=lookup_order args={} reason=invalid_args tokens=100+20"), "{shown}");
    assert!(shown.contains("spend      tokens=200+40 cost_micros=280"), "{shown}");
    assert!(shown.contains("stop       max_rejections"), "{shown}");
    let shown = batonctl(&["get", &tokens]);
    assert!(shown.contains("step=0 completed tool=lookup_order"), "{shown}");
    let listed = batonctl(&["tools", "list"]);
    assert!(listed.contains("lookup_order kind=http side_effect=read idempotent=true"), "{listed}");
    assert!(listed.contains("echo kind=builtin side_effect=none"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_and_tool_failures_are_retried_or_fatal() {
    let a = AgentStack::start("failures", |_| {}).await;
    let mut client = a.stack.client().await;
    let m = &a.model;
    m.script("busy model", vec![Reply::status(429, Some(1)), Reply::status(500, None), Reply::text("ok after all")]);
    m.script("slow model", vec![Reply::text("too late").after(Duration::from_millis(3_500)), Reply::text("in time")]);
    m.script("malformed model", vec![Reply::of(Say::Malformed)]);
    m.script("huge model", vec![Reply::of(Say::Huge(100_000))]);
    m.script("flaky tool", vec![Reply::call("lookup_order", r#"{"order_id":"F1"}"#), Reply::text("found F1")]);
    m.script("missing order", vec![Reply::call("ship_order", r#"{"order_id":"nope"}"#), Reply::text("could not ship")]);
    a.tools.set("lookup_order", Behavior::FailFirst { status: 503, times: 1 });
    a.tools.set("ship_order", Behavior::Always(404));
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for goal in ["busy model", "slow model", "malformed model", "huge model"] {
            ids.push(submit(&mut client, model_run(goal, &[]), "").await);
        }
        ids.push(submit(&mut client, model_run("flaky tool", &["lookup_order"]), "").await);
        ids.push(submit(&mut client, model_run("missing order", &["ship_order"]), "").await);
        ids
    };

    // 429 (its Retry-After honoured) and 500 go through the retry tiers.
    let (run, events) = finish(&mut client, &ids[0], &a).await;
    assert_eq!((run.status(), run.result.as_str()), (RunStatus::Succeeded, "ok after all"));
    let failed: Vec<&RunEvent> = events.iter().filter(|e| e.kind() == EventKind::StepFailed).collect();
    assert_eq!(failed.len(), 2);
    assert!(failed[0].detail.contains("HTTP 429") && failed[1].detail.contains("HTTP 500"), "{failed:?}");
    assert!(failed[0].not_before_ms - failed[0].at_ms >= 1_000, "Retry-After: 1 honoured");
    // A timeout is retried.
    let (run, events) = finish(&mut client, &ids[1], &a).await;
    assert_eq!((run.status(), run.result.as_str()), (RunStatus::Succeeded, "in time"));
    assert!(events.iter().any(|e| e.kind() == EventKind::StepFailed && e.detail.contains("timed out")), "{events:?}");
    // A malformed or oversized completion is fatal, with a clear reason.
    let (run, _) = finish(&mut client, &ids[2], &a).await;
    assert_eq!(run.status(), RunStatus::Failed);
    let why = run.stop_reason.unwrap();
    assert_eq!(why.code, "planner_error");
    assert!(why.message.contains("malformed completion"), "{}", why.message);
    let (run, _) = finish(&mut client, &ids[3], &a).await;
    assert_eq!(run.status(), RunStatus::Failed);
    assert!(run.stop_reason.unwrap().message.contains("larger than max_response_bytes (65536)"));
    assert_eq!(m.requests("malformed model").len(), 1, "a fatal answer is not asked again");

    // A tool's 503 retries the committed proposal with the same key; the model is not asked again.
    let (run, _) = finish(&mut client, &ids[4], &a).await;
    assert_eq!((run.status(), run.result.as_str()), (RunStatus::Succeeded, "found F1"));
    let calls = a.tools.calls("lookup_order");
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.idempotency_key == format!("{}:0", ids[4]) && c.body["order_id"] == "F1"));
    assert_eq!(m.requests("flaky tool").len(), 2, "the proposal was not asked for again");
    // A tool's 404 is not retried: the model hears about it and answers.
    let (run, _) = finish(&mut client, &ids[5], &a).await;
    assert_eq!((run.status(), run.result.as_str()), (RunStatus::Succeeded, "could not ship"));
    assert_eq!(run.steps[0].outcome(), StepOutcome::Failed);
    assert!(run.steps[0].error.contains("HTTP 404"), "{}", run.steps[0].error);
    assert_eq!(a.tools.calls("ship_order").len(), 1);
    let told = &m.requests("missing order")[1]["messages"][2]["content"];
    assert!(told.as_str().unwrap().starts_with("the tool failed:"), "{told}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_proposal_runs_after_a_sigkill_without_asking_the_model_again() {
    let mut a = AgentStack::start("proposal-crash", |_| {}).await;
    let mut client = a.stack.client().await;
    a.tools.set("ship_order", Behavior::Slow(Duration::from_secs(4)));
    a.model.script("ship K9", vec![Reply::call("ship_order", r#"{"order_id":"K9"}"#), Reply::text("shipped K9")]);
    let id = submit(&mut client, model_run("ship K9", &["ship_order"]), "").await;
    // The tool is called only once the proposal is committed: kill the worker mid-call.
    assert!(
        eventually(Duration::from_secs(30), || !a.tools.calls("ship_order").is_empty()).await,
        "{}",
        a.stack.logs()
    );
    let worker = a.stack.find("worker");
    a.stack.services[worker].kill().await;
    let committed = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 0 }).await.unwrap().into_inner();
    assert_eq!(committed.pending.unwrap().call.unwrap().args_json, r#"{"order_id":"K9"}"#, "the proposal was durable");
    a.stack.start("worker").await;

    let (run, events) = finish(&mut client, &id, &a).await;
    assert_eq!((run.status(), run.result.as_str()), (RunStatus::Succeeded, "shipped K9"));
    let calls = a.tools.calls("ship_order");
    assert_eq!(calls.len(), 2, "the interrupted call ran again after recovery");
    assert!(calls.iter().all(|c| c.idempotency_key == format!("{id}:0") && c.body == calls[0].body), "{calls:?}");
    let requests = a.model.requests("ship K9");
    assert_eq!(requests.len(), 2, "the model proposed step 0 once, then saw its result");
    assert_eq!(requests[1]["messages"].as_array().unwrap().len(), 3);
    assert_eq!(count(&events, EventKind::StepProposed), 1);
    assert_eq!(count(&events, EventKind::StepCompleted), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_reloads_without_a_restart_and_bad_input_is_refused() {
    let mut a = AgentStack::start("manifest", |_| {}).await;
    let mut client = a.stack.client().await;
    let mut admin = a.stack.admin().await;

    // Unknown model endpoint or tool: INVALID_ARGUMENT naming it, nothing stored.
    let spec = baton_core::plan::model_spec("gpt-9", "g", &["lookup_order"]);
    let err = client.submit_run(SubmitRunRequest { spec: Some(spec), idempotency_key: "k1".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("\"gpt-9\"") && err.message().contains("scripted"), "{err}");
    let spec = model_run("bake", &["bake_cake"]);
    let err = client
        .submit_run(SubmitRunRequest { spec: Some(spec.clone()), idempotency_key: "k2".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("\"bake_cake\""), "{err}");
    let listed = client.list_runs(ListRunsRequest::default()).await.unwrap().into_inner();
    assert!(listed.runs.is_empty(), "nothing stored");

    // A manifest change takes effect on the gateway and the worker without a restart.
    let before = admin.list_tools(baton_proto::v1::ListToolsRequest {}).await.unwrap().into_inner().manifest_version;
    let extra = format!(
        "{}\n[tools.bake_cake]\ndescription = \"Bake a cake\"\nkind = \"http\"\nside_effect = \"read\"\nurl = \"{}\"\nargs_schema = {{ type = \"object\" }}\n",
        baton_testkit::agents::manifest(&a.tools, &a.grpc),
        a.tools.url("bake_cake")
    );
    a.stack.write_file("tools.toml", &extra);
    let mut version = before.clone();
    for _ in 0..100 {
        version = admin.list_tools(baton_proto::v1::ListToolsRequest {}).await.unwrap().into_inner().manifest_version;
        if version != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(version, before, "the gateway picked up the new manifest");
    tokio::time::sleep(Duration::from_millis(600)).await; // the worker watches the same file
    a.model.script("bake", vec![Reply::call("bake_cake", r#"{"flavour":"lemon"}"#), Reply::text("baked")]);
    let id = submit(&mut client, spec, "").await;
    let (run, _) = finish(&mut client, &id, &a).await;
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert_eq!(outcomes(&run), vec![(StepOutcome::Completed, String::new())], "{run:#?}");
    assert_eq!(a.tools.calls("bake_cake").len(), 1);

    // An invalid manifest is rejected on reload; the previous one stays in force.
    a.stack.write_file(
        "tools.toml",
        &extra.replace(
            r#"side_effect = "read"
url = "http://127.0.0.1"#,
            r#"side_effect = "sometimes"
url = "http://127.0.0.1"#,
        ),
    );
    let err = admin.reload_tools(baton_proto::v1::ReloadToolsRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("tools.lookup_order.side_effect") || err.message().contains(".side_effect"),
        "{err}"
    );
    let now = admin.list_tools(baton_proto::v1::ListToolsRequest {}).await.unwrap().into_inner();
    assert_eq!(now.manifest_version, version, "the previous manifest stays");
    assert!(now.last_error.contains("side_effect"), "{}", now.last_error);
    assert!(now.tools.iter().any(|t| t.name == "bake_cake"));

    // An invalid manifest or model config at start: exit 2, naming the key.
    let bad = a.stack.write_file(
        "bad-tools.toml",
        "[tools.x]\ndescription='x'\nkind='smtp'\nside_effect='none'\nargs_schema={type='object'}\n",
    );
    let (code, log) =
        a.stack.start_expecting_exit("worker", &[("BATON_TOOLS_MANIFEST", &bad.display().to_string())]).await;
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("tools.x.kind"), "{log}");
    let dir = TempDir::new("bad-config");
    let config = dir.path().join("baton.toml");
    std::fs::write(&config, "[models.bad]\nbase_url = \"localhost:1\"\nmodel = \"m\"\n").unwrap();
    let (code, log) = a.stack.start_expecting_exit("gateway", &[("BATON_CONFIG", &config.display().to_string())]).await;
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("models.bad.base_url"), "{log}");
}
