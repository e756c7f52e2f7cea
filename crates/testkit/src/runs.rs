//! Run helpers for tests: building script specs, submitting, watching to the end, checking
//! that a run's history is consistent (every step committed once, in order), and the two
//! operator moves many tests make (gating a tool on approval, granting one).

use std::time::Duration;

use baton_proto::v1::admin_service_client::AdminServiceClient;
use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{
    Approval, ApprovalDecision, EventKind, GetRunRequest, ResolveApprovalRequest, Run, RunEvent, RunSpec, RunStatus,
    SetToolSwitchRequest, SubmitRunRequest, WatchRunRequest,
};
use tonic::transport::Channel;

/// A script spec of `(tool, args_json)` steps.
pub fn script(steps: &[(&str, &str)]) -> RunSpec {
    RunSpec { goal: "test".into(), ..baton_core::plan::script_spec(steps) }
}

/// `n` echo steps.
pub fn echoes(n: usize) -> RunSpec {
    let steps: Vec<(String, String)> = (0..n).map(|i| ("echo".to_string(), format!(r#"{{"i":{i}}}"#))).collect();
    let refs: Vec<(&str, &str)> = steps.iter().map(|(t, a)| (t.as_str(), a.as_str())).collect();
    script(&refs)
}

/// Submits `spec` and returns the run id.
pub async fn submit(client: &mut RunServiceClient<Channel>, spec: RunSpec, key: &str) -> String {
    let req = SubmitRunRequest { spec: Some(spec), idempotency_key: key.to_string() };
    client.submit_run(req).await.expect("submit").into_inner().run_id
}

/// Watches a run from the start until the server ends the stream (the run has ended), at
/// most `within`.
pub async fn watch_to_end(
    client: &mut RunServiceClient<Channel>,
    run_id: &str,
    within: Duration,
) -> Result<Vec<RunEvent>, String> {
    let fut = async {
        let mut stream = client
            .watch_run(WatchRunRequest { run_id: run_id.to_string(), after_seq: 0 })
            .await
            .map_err(|s| s.to_string())?
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = stream.message().await.map_err(|s| s.to_string())? {
            events.push(event);
        }
        Ok(events)
    };
    tokio::time::timeout(within, fut).await.map_err(|_| format!("run {run_id} did not finish within {within:?}"))?
}

/// Checks a finished run's history: sequence numbers 1..n without gaps; every step recorded
/// exactly once (completed, rejected, drafted, denied by a person, or failed for good and shown
/// to the planner), in
/// order from 0, a completed one under the key `<run>:<step>`; a RUN_FINISHED last (an earlier
/// one only if a requeue follows it). Returns the number of completed steps.
pub fn check_history(events: &[RunEvent]) -> Result<u32, String> {
    let mut next_step = 0u32;
    let mut completed = 0u32;
    for (i, e) in events.iter().enumerate() {
        if e.seq != i as u64 + 1 {
            return Err(format!("event {i} has seq {} (want {}): {events:?}", e.seq, i + 1));
        }
        let next = events.get(i + 1).map(RunEvent::kind);
        let recorded = match e.kind() {
            EventKind::StepCompleted | EventKind::ProposalRejected | EventKind::StepDrafted => true,
            EventKind::ApprovalResolved => e.reason_code == "approval_denied",
            EventKind::StepFailed => e.not_before_ms == 0 && next.is_some_and(|k| k != EventKind::RunFinished),
            _ => false,
        };
        if recorded {
            if e.step != next_step {
                return Err(format!("step {} recorded when {next_step} was next (duplicate or gap)", e.step));
            }
            next_step += 1;
        }
        match e.kind() {
            EventKind::StepCompleted => {
                if e.idempotency_key != format!("{}:{}", e.run_id, e.step) {
                    return Err(format!("step {} ran with key {:?}", e.step, e.idempotency_key));
                }
                completed += 1;
            }
            EventKind::RunFinished if i + 1 != events.len() && events[i + 1].kind() != EventKind::RunRequeued => {
                return Err("RUN_FINISHED is followed by something other than a requeue".into())
            }
            _ => {}
        }
    }
    match events.last() {
        Some(e) if e.kind() == EventKind::RunFinished => Ok(completed),
        _ => Err("history does not end with RUN_FINISHED".into()),
    }
}

/// The final status in a finished history.
pub fn final_status(events: &[RunEvent]) -> RunStatus {
    events.last().map_or(RunStatus::Unspecified, |e| e.status())
}

/// Polls GetRun until `done(run)` holds, at most `within`; returns the run.
pub async fn wait_for_run(
    client: &mut RunServiceClient<Channel>,
    run_id: &str,
    within: Duration,
    done: impl Fn(&Run) -> bool,
) -> Result<Run, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let run = client
            .get_run(GetRunRequest { run_id: run_id.to_string(), latest_steps: 0 })
            .await
            .map_err(|s| s.to_string())?
            .into_inner();
        if done(&run) {
            return Ok(run);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("run {run_id} did not get there within {within:?}; it is {run:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls GetRun until the run has `status`, at most `within`; returns it.
pub async fn wait_for_status(
    client: &mut RunServiceClient<Channel>,
    run_id: &str,
    status: RunStatus,
    within: Duration,
) -> Result<Run, String> {
    wait_for_run(client, run_id, within, |run| run.status() == status).await
}

/// `message` as a call acting for `tenant` (the `x-baton-tenant` header of a gateway without
/// authentication).
pub fn as_tenant<T>(message: T, tenant: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-baton-tenant", tenant.parse().expect("a tenant name is valid header text"));
    request
}

/// An operator (actor `ops`) makes every call of `tool` wait for a person, then gives every
/// service time to see the switch (switches refresh every second).
pub async fn require_approval(admin: &mut AdminServiceClient<Channel>, tool: &str) {
    let switch = SetToolSwitchRequest {
        tool: tool.into(),
        requires_approval: Some(true),
        actor: "ops".into(),
        reason: "audit".into(),
        ..Default::default()
    };
    admin.set_tool_switch(switch).await.expect("set the requires_approval switch");
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// The request that grants `approval` of run `run_id`, quoting the id and action hash it was shown.
pub fn approve(run_id: &str, approval: &Approval, actor: &str, comment: &str) -> ResolveApprovalRequest {
    ResolveApprovalRequest {
        run_id: run_id.into(),
        approval_id: approval.approval_id.clone(),
        action_hash: approval.action_hash.clone(),
        decision: ApprovalDecision::Approve as i32,
        actor: actor.into(),
        comment: comment.into(),
    }
}
