//! Readiness that means what it says, over real processes. `/readyz`: a worker busy for longer
//! than the stale bound (its one permit held by a 12 s step) stays ready; Redis frozen turns
//! the gateway (its request path's pool) and the scheduler (its timer sweep stalls) not ready,
//! and ready again once Redis answers; the broker frozen turns the gateway's producer check
//! not ready and back; SIGTERM turns the gateway not ready while it drains. CheckReadiness: the
//! "audit log" and "human override" items fail on a fleet nobody has operated, and pass once an
//! operator switch and an approval decision are on record.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use baton_proto::v1::{
    CheckReadinessRequest, ListApprovalsRequest, ReadinessItem, RunStatus, SetToolSwitchRequest, WatchRunRequest,
};
use baton_testkit::runs::{approve, script, submit, wait_for_status, watch_to_end};
use baton_testkit::{http_get, Stack, StackOptions};

const WITHIN: Duration = Duration::from_secs(60);

/// `/readyz` of service `index`: its status and body.
async fn readyz(stack: &Stack, index: usize) -> (u16, String) {
    let port = stack.services[index].ops_port.unwrap();
    http_get(port, "/readyz").await.unwrap_or((0, "no answer".into()))
}

/// Waits until `/readyz` of service `index` answers `status` with a body containing `reason`.
async fn until_readyz(stack: &Stack, index: usize, status: u16, reason: &str) -> String {
    let deadline = Instant::now() + WITHIN;
    loop {
        let (got, body) = readyz(stack, index).await;
        if got == status && body.contains(reason) {
            return body;
        }
        let name = &stack.services[index].name;
        assert!(Instant::now() < deadline, "{name} /readyz never said {status} {reason:?}; last: {got} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn checklist(stack: &Stack) -> Vec<ReadinessItem> {
    stack.admin().await.check_readiness(CheckReadinessRequest {}).await.unwrap().into_inner().items
}

fn status_of<'a>(items: &'a [ReadinessItem], name: &str) -> &'a ReadinessItem {
    items.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("no item {name}: {items:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reflects_what_each_signal_names() {
    let mut opts = StackOptions::default();
    opts.env.extend([
        ("BATON_WORKER_CONCURRENCY".to_string(), "1".to_string()),
        ("BATON_SWITCHES_REFRESH_MS".to_string(), "100".to_string()),
    ]);
    let stack = Stack::full("readiness", opts).await;
    let (gateway, worker, scheduler) = (stack.find("gateway"), stack.find("worker"), stack.find("scheduler"));
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;

    // Nobody has operated this fleet: nothing shows the audit trail or a human override works.
    let items = checklist(&stack).await;
    for name in ["audit log", "human override"] {
        let item = status_of(&items, name);
        assert_eq!((item.status.as_str(), item.blocking), ("fail", true), "{item:?}");
        assert!(!item.next_action.is_empty(), "{item:?}");
    }
    // An operator makes `echo` need approval (a switch, audited), and a person approves a call.
    let gate = |on: bool| SetToolSwitchRequest {
        tool: "echo".into(),
        requires_approval: Some(on),
        actor: "ops-ann".into(),
        reason: "readiness drill".into(),
        ..Default::default()
    };
    admin.set_tool_switch(gate(true)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // every service's switches refresh
    let gated = submit(&mut client, script(&[("echo", r#"{"x":1}"#)]), "").await;
    wait_for_status(&mut client, &gated, RunStatus::Waiting, WITHIN).await.unwrap();
    let pending = client
        .list_approvals(ListApprovalsRequest { limit: 0, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .approvals;
    let approval = pending[0].approval.clone().unwrap();
    client.resolve_approval(approve(&gated, &approval, "alice", "drill")).await.unwrap();
    // The switch goes back; the decision and the change stay on record.
    admin.set_tool_switch(gate(false)).await.unwrap();
    let items = checklist(&stack).await;
    let audit = status_of(&items, "audit log");
    assert_eq!(audit.status, "pass", "{audit:?}");
    assert!(audit.evidence.contains("switch:tool.requires_approval:echo"), "the latest entry is named: {audit:?}");
    let human = status_of(&items, "human override");
    assert_eq!(human.status, "pass", "{human:?}");
    assert!(human.evidence.contains("2 changes") && human.evidence.contains("1 decisions"), "{human:?}");
    let events = watch_to_end(&mut client, &gated, WITHIN).await.unwrap();
    assert_eq!(events.last().unwrap().status(), RunStatus::Succeeded);

    // Busy is not stuck: the worker's one permit is held by a 12 s step, longer than the 10 s
    // after which a loop that stopped going round is stalled.
    let busy = submit(&mut client, script(&[("sleep", r#"{"ms":12000}"#)]), "").await;
    wait_for_status(&mut client, &busy, RunStatus::Running, WITHIN).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(11) {
        let (status, body) = readyz(&stack, worker).await;
        assert_eq!(status, 200, "a busy worker reported not ready after {:?}: {body}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = watch_to_end(&mut client, &busy, WITHIN).await.unwrap();
    assert_eq!(events.last().unwrap().status(), RunStatus::Succeeded);

    // Redis stops answering: the gateway's request path and the scheduler's timer sweep say so.
    stack.redis.proc.freeze();
    let body = until_readyz(&stack, gateway, 503, "redis unreachable").await;
    println!("gateway with Redis frozen: {body}");
    let body = until_readyz(&stack, scheduler, 503, "timer sweep stalled").await;
    println!("scheduler with Redis frozen: {body}");
    stack.redis.proc.thaw();
    until_readyz(&stack, gateway, 200, "ready").await;
    until_readyz(&stack, scheduler, 200, "ready").await;

    // The broker stops answering: the gateway's producer cannot reach it.
    stack.broker.proc.freeze();
    let body = until_readyz(&stack, gateway, 503, "kafka unreachable").await;
    println!("gateway with the broker frozen: {body}");
    stack.broker.proc.thaw();
    until_readyz(&stack, gateway, 200, "ready").await;

    // SIGTERM: not ready while draining (an open watch keeps the drain going).
    let parked = submit(&mut client, script(&[("wait", r#"{"ms":3600000}"#), ("echo", "{}")]), "").await;
    let mut watch = client.watch_run(WatchRunRequest { run_id: parked, after_seq: 0 }).await.unwrap().into_inner();
    watch.message().await.unwrap().unwrap();
    let pid = stack.services[gateway].pid();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    until_readyz(&stack, gateway, 503, "draining").await;
}
