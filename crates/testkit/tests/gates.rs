//! Human gates and tool safety over real processes: approvals bound to the exact action (and
//! their expiry), per-tool circuit breakers shared by two workers, operator switches that take
//! effect without a restart, and runs whose non-idempotent external call was cut off by a
//! SIGKILL waiting for an operator to reconcile them.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{
    Approval, ApprovalDecision, AutonomyLevel, EventKind, GetRunRequest, ListApprovalsRequest, ListSwitchesRequest,
    ListToolsRequest, ReconcileRunRequest, Reconciliation, ResolveApprovalRequest, RetryPolicy, Run, RunStatus,
    SetLaneSwitchRequest, SetTenantCapRequest, SetToolSwitchRequest, StepOutcome, SubmitRunRequest,
};
use baton_testkit::agents::{eventually, model_run, with_autonomy, AgentStack};
use baton_testkit::model_server::Reply;
use baton_testkit::runs::{as_tenant, check_history, script, submit, wait_for_run, wait_for_status, watch_to_end};
use baton_testkit::tool_server::Behavior;
use tonic::transport::Channel;
use tonic::Code;

const WITHIN: Duration = Duration::from_secs(60);

async fn get(client: &mut RunServiceClient<Channel>, run_id: &str) -> Run {
    client.get_run(GetRunRequest { run_id: run_id.into(), latest_steps: 0 }).await.unwrap().into_inner()
}

/// Waits until the run waits with `reason`; returns it.
async fn waiting_for(client: &mut RunServiceClient<Channel>, run_id: &str, reason: &str, a: &AgentStack) -> Run {
    wait_for_run(client, run_id, WITHIN, |r| r.status() == RunStatus::Waiting && r.wait_reason == reason)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()))
}

fn approval_of(run: &Run) -> Approval {
    run.pending.as_ref().and_then(|p| p.approval.clone()).expect("a pending approval")
}

fn resolve(run_id: &str, a: &Approval, decision: ApprovalDecision, actor: &str) -> ResolveApprovalRequest {
    ResolveApprovalRequest {
        run_id: run_id.into(),
        approval_id: a.approval_id.clone(),
        action_hash: a.action_hash.clone(),
        decision: decision as i32,
        actor: actor.into(),
        comment: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_runs_exactly_the_action_it_was_given_for() {
    let a = AgentStack::start("approvals", |_| {}).await;
    let mut client = a.stack.client().await;
    a.model.script(
        "refund order R1",
        vec![
            Reply::call("refund", r#"{"order_id":"R1","amount":30}"#),
            Reply::call("refund", r#"{"amount":20, "order_id":"R1"}"#),
            Reply::text("refunded 20"),
        ],
    );
    let spec =
        with_autonomy(model_run("refund order R1", &["refund", "lookup_order"]), AutonomyLevel::ExecutesAfterApproval);
    let id = submit(&mut client, spec, "").await;
    let run = waiting_for(&mut client, &id, "approval", &a).await;
    let first = approval_of(&run);
    assert_eq!((first.required_by.as_str(), first.action_hash.len()), ("autonomy", 64));
    let reaper = a.stack.find("reaper");
    let approvals_waiting = |text: &str| {
        text.lines().find_map(|l| l.strip_prefix("baton_fleet_approvals_waiting ")?.trim().parse::<f64>().ok())
    };
    let deadline = Instant::now() + WITHIN;
    while approvals_waiting(&a.stack.metrics(reaper).await) != Some(1.0) {
        assert!(Instant::now() < deadline, "the fleet gauge never showed the waiting approval");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = client
        .list_approvals(ListApprovalsRequest { limit: 0, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .approvals;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].run_id.as_str(), listed[0].approval.as_ref().unwrap()), (id.as_str(), &first));
    assert_eq!(listed[0].call.as_ref().unwrap().tool, "refund");

    // Bad input: a clear status and nothing written.
    let seq_before = run.updated_at_ms;
    let refused = [
        (resolve(&id, &first, ApprovalDecision::Approve, "  "), Code::InvalidArgument),
        (resolve(&id, &first, ApprovalDecision::Unspecified, "alice"), Code::InvalidArgument),
        (
            ResolveApprovalRequest {
                action_hash: "0".repeat(64),
                ..resolve(&id, &first, ApprovalDecision::Approve, "eve")
            },
            Code::FailedPrecondition,
        ),
        (
            ResolveApprovalRequest {
                approval_id: "deadbeef".into(),
                ..resolve(&id, &first, ApprovalDecision::Approve, "eve")
            },
            Code::FailedPrecondition,
        ),
        (resolve("no-such-run", &first, ApprovalDecision::Approve, "eve"), Code::NotFound),
    ];
    for (req, code) in refused {
        let status = client.resolve_approval(req.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "{req:?}: {status:?}");
    }
    let foreign =
        client.resolve_approval(as_tenant(resolve(&id, &first, ApprovalDecision::Approve, "mallory"), "other")).await;
    assert_eq!(foreign.unwrap_err().code(), Code::NotFound, "another tenant's run does not exist for it");
    let unchanged = get(&mut client, &id).await;
    assert_eq!((unchanged.updated_at_ms, approval_of(&unchanged)), (seq_before, first.clone()), "nothing was written");
    assert!(a.tools.calls("refund").is_empty());

    // Denied: the model hears why and proposes a changed action, which needs its own approval.
    let denied = client
        .resolve_approval(ResolveApprovalRequest {
            comment: "too much".into(),
            ..resolve(&id, &first, ApprovalDecision::Deny, "bob")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(denied.status(), RunStatus::Running);
    assert_eq!(denied.approval.unwrap().actor, "bob");
    let run = wait_for_run(&mut client, &id, WITHIN, |r| {
        r.wait_reason == "approval"
            && r.pending.as_ref().and_then(|p| p.approval.as_ref()).is_some_and(|x| x.approval_id != first.approval_id)
    })
    .await
    .unwrap();
    let second = approval_of(&run);
    assert_ne!(second.action_hash, first.action_hash, "a changed action has a new hash");
    let stale = client.resolve_approval(resolve(&id, &first, ApprovalDecision::Approve, "alice")).await.unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");
    assert!(stale.message().contains("stale"), "{}", stale.message());
    let old_hash = Approval { approval_id: second.approval_id.clone(), ..first.clone() };
    let mismatch =
        client.resolve_approval(resolve(&id, &old_hash, ApprovalDecision::Approve, "alice")).await.unwrap_err();
    assert_eq!(mismatch.code(), Code::FailedPrecondition);
    assert!(mismatch.message().contains("does not match"), "{}", mismatch.message());

    // Approved: exactly the approved call runs, once.
    client.resolve_approval(resolve(&id, &second, ApprovalDecision::Approve, "alice")).await.unwrap();
    let events = watch_to_end(&mut client, &id, WITHIN).await.unwrap();
    check_history(&events).unwrap();
    let run = get(&mut client, &id).await;
    assert_eq!((run.status(), run.result.as_str()), (RunStatus::Succeeded, "refunded 20"), "{}", a.stack.logs());
    let calls = a.tools.calls("refund");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, serde_json::json!({"order_id":"R1","amount":20}));
    let steps: Vec<_> = run
        .steps
        .iter()
        .map(|s| (s.outcome(), s.reason_code.as_str(), s.approval.as_ref().unwrap().actor.as_str()))
        .collect();
    assert_eq!(steps, vec![(StepOutcome::Rejected, "approval_denied", "bob"), (StepOutcome::Completed, "", "alice")]);
    let kinds = |k| events.iter().filter(|e| e.kind() == k).count();
    assert_eq!((kinds(EventKind::ApprovalRequested), kinds(EventKind::ApprovalResolved)), (2, 2));
    let resolved: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == EventKind::ApprovalResolved)
        .map(|e| (e.actor.as_str(), e.reason_code.as_str()))
        .collect();
    assert_eq!(resolved, vec![("bob", "approval_denied"), ("alice", "approved")]);
    let again = client.resolve_approval(resolve(&id, &second, ApprovalDecision::Approve, "alice")).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "the run is not waiting any more");
    assert!(client
        .list_approvals(ListApprovalsRequest { limit: 0, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .approvals
        .is_empty());
    let deadline = Instant::now() + WITHIN;
    while approvals_waiting(&a.stack.metrics(reaper).await) != Some(0.0) {
        assert!(Instant::now() < deadline, "the fleet gauge kept an answered approval");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_run_survives_a_worker_kill_and_unanswered_requests_expire() {
    let mut a =
        AgentStack::start("approval-expiry", |o| o.config_toml.push_str("\n[approvals]\nttl_ms = 3000\n")).await;
    let mut client = a.stack.client().await;
    let mut admin = a.stack.admin().await;
    // An operator makes every ship_order call need approval, without a restart.
    let change = admin
        .set_tool_switch(SetToolSwitchRequest {
            tool: "ship_order".into(),
            requires_approval: Some(true),
            actor: "ops-ann".into(),
            reason: "carrier incident".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((change.switch.as_str(), change.value.as_str()), ("tool.requires_approval", "true"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let id = submit(&mut client, script(&[("ship_order", r#"{"order_id":"S1"}"#), ("echo", "{}")]), "").await;
    let run = waiting_for(&mut client, &id, "approval", &a).await;
    let approval = approval_of(&run);
    assert_eq!(approval.required_by, "operator");

    // The worker dies between the approval and the execution; a new one runs the call once.
    let worker = a.stack.find("worker");
    a.stack.services[worker].kill().await;
    client.resolve_approval(resolve(&id, &approval, ApprovalDecision::Approve, "alice")).await.unwrap();
    a.stack.start("worker").await;
    let run = wait_for_status(&mut client, &id, RunStatus::Succeeded, WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    assert_eq!(a.tools.calls("ship_order").len(), 1);
    assert_eq!(run.steps[0].approval.as_ref().unwrap().actor, "alice");

    // Nobody answers: the request is denied by expiry, on time, and the script run is refused.
    let id = submit(&mut client, script(&[("ship_order", r#"{"order_id":"S2"}"#)]), "").await;
    let run = waiting_for(&mut client, &id, "approval", &a).await;
    let expires_at = approval_of(&run).expires_at_ms;
    let run = wait_for_status(&mut client, &id, RunStatus::Refused, WITHIN).await.unwrap();
    let stop = run.stop_reason.clone().unwrap();
    assert_eq!((stop.code.as_str(), stop.by.as_str()), ("approval_denied", "baton:expired"));
    assert!(
        run.updated_at_ms >= expires_at && run.updated_at_ms < expires_at + 3_000,
        "expired at {} for {expires_at}",
        run.updated_at_ms
    );
    assert_eq!(a.tools.calls("ship_order").len(), 1, "the expired call never ran");

    let switches = admin.list_switches(ListSwitchesRequest { audit_limit: 10 }).await.unwrap().into_inner();
    assert_eq!(switches.in_force.len(), 1);
    assert_eq!(
        (switches.in_force[0].actor.as_str(), switches.in_force[0].reason.as_str()),
        ("ops-ann", "carrier incident")
    );
    assert_eq!(switches.audit[0].target, "ship_order");
    let tools = admin.list_tools(ListToolsRequest {}).await.unwrap().into_inner().tools;
    assert!(tools.iter().find(|t| t.name == "ship_order").unwrap().requires_approval);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opens_fleet_wide_then_half_opens_and_closes() {
    let config = "\n[breakers]\nfailures = 3\nwindow_ms = 60000\ncooldown_ms = 8000\n";
    let mut a = AgentStack::start("breakers", |o| o.config_toml.push_str(config)).await;
    let mut client = a.stack.client().await;
    a.tools.set("lookup_order", Behavior::Always(503));
    let lookup = |i: usize, attempts: u32| {
        let mut spec = script(&[("lookup_order", &format!(r#"{{"order_id":"B{i}"}}"#))]);
        spec.retry = Some(RetryPolicy { max_attempts: attempts, initial_backoff_ms: 100, max_backoff_ms: 1000 });
        spec
    };
    let admin = a.stack.admin().await;
    let breaker = || {
        let mut admin = admin.clone();
        async move {
            let tools = admin.list_tools(ListToolsRequest {}).await.unwrap().into_inner().tools;
            tools.into_iter().find(|t| t.name == "lookup_order").unwrap().breaker.unwrap()
        }
    };
    let failures_seen = |metrics: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("baton_tool_calls_total") && l.contains("lookup_order") && l.contains("retryable")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // The first worker sees two failures (one attempt each): not enough to open the breaker.
    for i in 0..2 {
        let id = submit(&mut client, lookup(i, 1), "").await;
        wait_for_status(&mut client, &id, RunStatus::DeadLettered, WITHIN).await.unwrap();
    }
    let first = a.stack.find("worker");
    assert_eq!(failures_seen(&a.stack.metrics(first).await), 2.0);
    let b = breaker().await;
    assert_eq!((b.state.as_str(), b.failures), ("closed", 2));
    // A second worker takes over and sees the third failure: the shared breaker opens. The
    // first leaves once the group has settled with both (tansu 0.6.0 can leave a group that
    // loses a member mid-rebalance without an assignment; see docs/reliability.md).
    let second = a.stack.start("worker").await;
    a.stack.wait_for_partitions("main", &[second]).await;
    a.stack.services[first].terminate(Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let id = submit(&mut client, lookup(2, 10), "").await;
    let deadline = Instant::now() + WITHIN;
    while breaker().await.state != "open" {
        assert!(Instant::now() < deadline, "the breaker never opened\n{}", a.stack.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failures_seen(&a.stack.metrics(second).await), 1.0, "the third failure was the second worker's");
    // Log lines of a step name its run, step, attempt, tenant and trace.
    let logs = a.stack.services[second].log_text();
    let line = logs.lines().find(|l| l.contains("circuit breaker open")).expect("the opening is logged");
    for field in ["\"run_id\"", "\"step\"", "\"attempt\"", "\"tenant\":\"default\"", "\"trace_id\":\""] {
        assert!(line.contains(field), "{field} missing from {line}");
    }

    // Open: no worker calls the tool, not even a fresh one; the runs wait without spending attempts.
    let third = a.stack.start("worker").await;
    let mut ids = vec![id];
    for i in 3..11 {
        ids.push(submit(&mut client, lookup(i, 10), "").await);
    }
    let seen = a.tools.calls("lookup_order").len();
    assert_eq!(seen, 3);
    // Every run meets the open breaker (the third worker's join may hold some for a rebalance)
    // and no call goes out meanwhile.
    let deadline = Instant::now() + WITHIN;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(a.tools.calls("lookup_order").len(), seen, "calls went out while the breaker was open");
        let mut held = 0.0;
        for i in [second, third] {
            let metrics = a.stack.metrics(i).await;
            held += metrics
                .lines()
                .filter(|l| l.starts_with("baton_tool_breaker_rejections_total") && l.contains("lookup_order"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        if held >= 9.0 {
            break;
        }
        assert!(Instant::now() < deadline, "not every run met the open breaker: {held}\n{}", a.stack.logs());
    }

    // The tool recovers: after the cool-down one probe goes out, succeeds, and closes the breaker.
    a.tools.set("lookup_order", Behavior::Ok);
    for id in &ids {
        let run = wait_for_status(&mut client, id, RunStatus::Succeeded, WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
        assert!(run.steps[0].attempt <= 2, "held calls spent no attempts: {:?}", run.steps[0]);
    }
    assert_eq!(breaker().await.state, "closed");
    assert_eq!(a.tools.calls("lookup_order").len(), seen + ids.len(), "one successful call per run, nothing more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_switches_act_within_seconds_without_a_restart() {
    let a = AgentStack::start("switches", |_| {}).await;
    let mut client = a.stack.client().await;
    let mut admin = a.stack.admin().await;
    let ask = |tool: &str, disabled: bool| SetToolSwitchRequest {
        tool: tool.into(),
        disabled: Some(disabled),
        actor: "ops-joe".into(),
        reason: "lookup backend degraded".into(),
        ..Default::default()
    };
    // Bad switch changes are refused.
    let no_reason = SetToolSwitchRequest { reason: String::new(), ..ask("lookup_order", true) };
    assert_eq!(admin.set_tool_switch(no_reason).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(admin.set_tool_switch(ask("nope", true)).await.unwrap_err().code(), Code::NotFound);
    let both = SetToolSwitchRequest { requires_approval: Some(true), ..ask("lookup_order", true) };
    assert_eq!(admin.set_tool_switch(both).await.unwrap_err().code(), Code::InvalidArgument);

    // Disable a tool mid-run: calls stop within 2 s; enabling it lets the run finish, nothing lost.
    a.tools.set("lookup_order", Behavior::Slow(Duration::from_millis(150)));
    let steps: Vec<(String, String)> =
        (0..30).map(|i| ("lookup_order".to_string(), format!(r#"{{"order_id":"D{i}"}}"#))).collect();
    let steps: Vec<(&str, &str)> = steps.iter().map(|(t, a)| (t.as_str(), a.as_str())).collect();
    let id = submit(&mut client, script(&steps), "").await;
    assert!(eventually(WITHIN, || a.tools.calls("lookup_order").len() >= 3).await, "{}", a.stack.logs());
    admin.set_tool_switch(ask("lookup_order", true)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped_at = a.tools.calls("lookup_order").len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.tools.calls("lookup_order").len(), stopped_at, "calls went on after the tool was disabled");
    assert!(stopped_at < 30);
    let tools = admin.list_tools(ListToolsRequest {}).await.unwrap().into_inner().tools;
    assert!(tools.iter().find(|t| t.name == "lookup_order").unwrap().disabled);
    admin.set_tool_switch(ask("lookup_order", false)).await.unwrap();
    let run = wait_for_status(&mut client, &id, RunStatus::Succeeded, WITHIN)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    let keys: std::collections::BTreeSet<String> =
        a.tools.calls("lookup_order").into_iter().map(|c| c.idempotency_key).collect();
    assert_eq!((keys.len(), run.steps.len()), (30, 30));

    // Pause the lane: submitted runs stay queued; resume releases every one of them.
    let lane =
        |paused| SetLaneSwitchRequest { lane: "main".into(), paused, actor: "ops-joe".into(), reason: "deploy".into() };
    admin.set_lane_switch(lane(true)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(submit(&mut client, script(&[("echo", "{}")]), "").await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in &held {
        assert_eq!(get(&mut client, id).await.status(), RunStatus::Queued, "dispatch was not held");
    }
    admin.set_lane_switch(lane(false)).await.unwrap();
    for id in &held {
        wait_for_status(&mut client, id, RunStatus::Succeeded, WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    }

    // A tenant's cap on active runs, changed at run time.
    let cap = |n| SetTenantCapRequest {
        tenant: "capped".into(),
        max_active_runs: n,
        actor: "ops-joe".into(),
        reason: "noisy neighbour".into(),
    };
    admin.set_tenant_cap(cap(1)).await.unwrap();
    let slow = SubmitRunRequest { spec: Some(script(&[("sleep", r#"{"ms":1500}"#)])), idempotency_key: String::new() };
    let first = client.submit_run(as_tenant(slow.clone(), "capped")).await.unwrap().into_inner().run_id;
    let over = client.submit_run(as_tenant(slow.clone(), "capped")).await.unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert!(over.message().contains("cap is 1"), "{}", over.message());
    client.submit_run(as_tenant(slow.clone(), "other")).await.unwrap();
    let deadline = Instant::now() + WITHIN;
    loop {
        let run = client
            .get_run(as_tenant(GetRunRequest { run_id: first.clone(), latest_steps: 0 }, "capped"))
            .await
            .unwrap()
            .into_inner();
        if run.status() == RunStatus::Succeeded {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.submit_run(as_tenant(slow, "capped")).await.unwrap();
    let audit = admin.list_switches(ListSwitchesRequest { audit_limit: 0 }).await.unwrap().into_inner().audit;
    let changes: Vec<(&str, &str)> = audit.iter().map(|c| (c.switch.as_str(), c.value.as_str())).collect();
    assert_eq!(
        changes,
        vec![
            ("tenant.max_active_runs", "1"),
            ("lane.paused", "false"),
            ("lane.paused", "true"),
            ("tool.disabled", "false"),
            ("tool.disabled", "true"),
        ],
        "newest first, every change audited"
    );
    assert!(audit.iter().all(|c| c.actor == "ops-joe" && !c.reason.is_empty() && c.at_ms > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_external_call_waits_for_reconciliation() {
    let mut a = AgentStack::start("reconcile", |_| {}).await;
    let mut client = a.stack.client().await;
    a.tools.set("refund", Behavior::Slow(Duration::from_secs(20)));
    let mut ids = Vec::new();
    for order in ["X1", "X2", "X3"] {
        let spec = script(&[("refund", &format!(r#"{{"order_id":"{order}","amount":5}}"#)), ("echo", "{}")]);
        ids.push(submit(&mut client, spec, "").await);
    }
    assert!(eventually(WITHIN, || a.tools.calls("refund").len() == 3).await, "{}", a.stack.logs());
    let worker = a.stack.find("worker");
    a.stack.services[worker].kill().await;
    a.stack.start("worker").await;
    for id in &ids {
        let run = waiting_for(&mut client, id, "needs_reconciliation", &a).await;
        let pending = run.pending.unwrap();
        assert!(pending.started_at_ms > 0 && !pending.started_by.is_empty());
        assert!(run.last_error.contains(&format!("{id}:0")), "what is known names the key: {}", run.last_error);
        assert!(run.last_error.contains("stopped mid-call"), "{}", run.last_error);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.tools.calls("refund").len(), 3, "no uncertain call was repeated");

    // Bad input.
    let req = |id: &str, step, decision: Reconciliation, actor: &str| ReconcileRunRequest {
        run_id: id.into(),
        step,
        decision: decision as i32,
        output_json: r#"{"refunded":true}"#.into(),
        actor: actor.into(),
        comment: "checked with the bank".into(),
    };
    assert_eq!(
        client.reconcile_run(req(&ids[0], 0, Reconciliation::Done, "")).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        client.reconcile_run(req(&ids[0], 1, Reconciliation::Done, "ops")).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let not_json = ReconcileRunRequest { output_json: "{oops".into(), ..req(&ids[0], 0, Reconciliation::Done, "ops") };
    assert_eq!(client.reconcile_run(not_json).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(
        client.reconcile_run(req(&ids[0], 0, Reconciliation::Unspecified, "ops")).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let foreign = client.reconcile_run(as_tenant(req(&ids[0], 0, Reconciliation::Done, "ops"), "other")).await;
    assert_eq!(foreign.unwrap_err().code(), Code::NotFound);

    // Done: the operator's output is recorded and the run goes on without calling again.
    a.tools.set("refund", Behavior::Ok);
    client.reconcile_run(req(&ids[0], 0, Reconciliation::Done, "ops")).await.unwrap();
    let run = wait_for_status(&mut client, &ids[0], RunStatus::Succeeded, WITHIN).await.unwrap();
    assert_eq!(
        (run.steps[0].output_json.as_str(), run.steps[0].reconciled_by.as_str()),
        (r#"{"refunded":true}"#, "ops")
    );
    // Not done: called again, with the same idempotency key.
    client.reconcile_run(req(&ids[1], 0, Reconciliation::NotDone, "ops")).await.unwrap();
    wait_for_status(&mut client, &ids[1], RunStatus::Succeeded, WITHIN).await.unwrap();
    let keys: Vec<String> =
        a.tools.calls("refund").into_iter().map(|c| c.idempotency_key).filter(|k| k.starts_with(&ids[1])).collect();
    assert_eq!(keys, vec![format!("{}:0", ids[1]), format!("{}:0", ids[1])]);
    // Fail: a script run fails.
    client.reconcile_run(req(&ids[2], 0, Reconciliation::Fail, "ops")).await.unwrap();
    let run = wait_for_status(&mut client, &ids[2], RunStatus::Failed, WITHIN).await.unwrap();
    assert!(run.stop_reason.unwrap().message.contains("reconciled as failed by ops"));
    assert_eq!(a.tools.calls("refund").len(), 4, "only the not-done call went out again");
    let again = client.reconcile_run(req(&ids[0], 0, Reconciliation::Done, "ops")).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    for id in &ids {
        let events = watch_to_end(&mut client, id, WITHIN).await.unwrap();
        check_history(&events).unwrap();
        assert_eq!(events.iter().filter(|e| e.kind() == EventKind::NeedsReconciliation).count(), 1);
        assert_eq!(events.iter().filter(|e| e.kind() == EventKind::RunReconciled).count(), 1);
    }
}
