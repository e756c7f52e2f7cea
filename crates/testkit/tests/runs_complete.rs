//! End to end over real processes: runs submitted over gRPC complete with the right steps and
//! ordered events; a `wait` parks a run, even as its last step; idempotent submit; ListRuns
//! filters and pages; services report ready; reflection lists every service served.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use baton_proto::v1::{EventKind, GetRunRequest, ListRunsRequest, RunStatus, SubmitRunRequest};
use baton_testkit::runs::{check_history, echoes, script, submit, wait_for_run, watch_to_end};
use baton_testkit::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_complete_in_order_and_submit_is_idempotent() {
    let stack = Stack::full("complete", StackOptions::default()).await;
    let mut client = stack.client().await;

    // grpc.health.v1 reports the RunService as serving.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", stack.grpc_port))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest { service: "baton.v1.RunService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
    // Server reflection answers both protocol versions (grpcurl before 1.8.8 asks only v1alpha).
    assert_reflection_lists_the_services(channel_to(&stack).await).await;
    // …and so a real grpcurl 1.8.6 (PyPI's, v1alpha only) lists, describes and calls the API.
    let listed = grpcurl(stack.grpc_port, &[], &["list"]).await;
    for service in ["baton.v1.RunService", "baton.v1.AdminService", "baton.v1.KeyService", "grpc.health.v1.Health"] {
        assert!(listed.lines().any(|l| l.trim() == service), "{service} is not listed: {listed}");
    }
    let described = grpcurl(stack.grpc_port, &[], &["describe", "grpc.health.v1.Health"]).await;
    assert!(described.contains("rpc Check"), "{described}");
    let described = grpcurl(stack.grpc_port, &[], &["describe", "baton.v1.RunService"]).await;
    assert!(described.contains("rpc SubmitRun"), "{described}");
    const SUBMIT: &str =
        r#"{"spec":{"goal":"grpcurl","planner":{"script":{"steps":[{"tool":"echo","argsJson":"{}"}]}}}}"#;
    let submitted = grpcurl(stack.grpc_port, &["-d", SUBMIT], &["baton.v1.RunService/SubmitRun"]).await;
    let reply: serde_json::Value = serde_json::from_str(&submitted).unwrap_or_else(|e| panic!("{e}: {submitted}"));
    let by_grpcurl = reply["runId"].as_str().expect("a run id").to_string();
    watch_to_end(&mut client, &by_grpcurl, Duration::from_secs(60)).await.unwrap();

    // A `wait` as the script's last step parks the run on its timer (it does not end at once),
    // and the scheduler's timer ends it, succeeded, when it is due.
    let parked = submit(&mut client, script(&[("echo", "{}"), ("wait", r#"{"ms":1500}"#)]), "").await;
    let run = wait_for_run(&mut client, &parked, Duration::from_secs(60), |r| {
        !matches!(r.status(), RunStatus::Queued | RunStatus::Running)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert_eq!((run.status(), run.wait_reason.as_str()), (RunStatus::Waiting, "timer"), "{run:?}");
    assert!(run.stop_reason.is_none() && run.wake_at_ms > run.created_at_ms, "{run:?}");
    let events = watch_to_end(&mut client, &parked, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert_eq!(check_history(&events), Ok(2), "{events:?}");
    let kinds: Vec<_> = events[events.len().saturating_sub(4)..].iter().map(|e| (e.kind(), e.step)).collect();
    let ends = [
        (EventKind::StepCompleted, 1),
        (EventKind::RunWaiting, 2),
        (EventKind::RunResumed, 2),
        (EventKind::RunFinished, 2),
    ];
    assert_eq!(kinds, ends, "{events:?}");
    let finished = events.last().unwrap();
    assert_eq!(finished.status(), RunStatus::Succeeded);
    assert!(finished.at_ms >= run.wake_at_ms, "finished at {} before its wake time {}", finished.at_ms, run.wake_at_ms);

    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(submit(&mut client, echoes(5), "").await);
    }
    for id in &ids {
        let events = watch_to_end(&mut client, id, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!(check_history(&events), Ok(5), "{events:?}");
        let kinds: Vec<_> = events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds.first(), Some(&EventKind::RunQueued));
        assert_eq!(events.last().unwrap().status(), RunStatus::Succeeded);
        let run = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 0 }).await.unwrap().into_inner();
        assert_eq!(run.status(), RunStatus::Succeeded);
        assert_eq!(run.steps_completed, 5);
        assert_eq!(run.stop_reason.unwrap().code, "completed");
        let output: serde_json::Value = serde_json::from_str(&run.steps[3].output_json).unwrap();
        assert_eq!(output["echo"]["i"], 3);
        assert_eq!(output["idempotency_key"], format!("{id}:3"));
    }

    // Same tenant + key twice: one run.
    let req = SubmitRunRequest { spec: Some(echoes(2)), idempotency_key: "order-42".into() };
    let first = client.submit_run(req.clone()).await.unwrap().into_inner();
    let second = client.submit_run(req).await.unwrap().into_inner();
    assert_eq!(first.run_id, second.run_id);
    assert!(!first.deduplicated);
    assert!(second.deduplicated);
    // The same key with another spec is refused, not silently mapped.
    let other = SubmitRunRequest { spec: Some(echoes(3)), idempotency_key: "order-42".into() };
    let err = client.submit_run(other).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err}");
    // Another tenant has its own key space.
    let mut req = tonic::Request::new(SubmitRunRequest { spec: Some(echoes(2)), idempotency_key: "order-42".into() });
    req.metadata_mut().insert("x-baton-tenant", "acme".parse().unwrap());
    let acme = client.submit_run(req).await.unwrap().into_inner();
    assert_ne!(acme.run_id, first.run_id);
    let events = watch_to_end(&mut client, &first.run_id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(check_history(&events), Ok(2));

    // ListRuns: filter by status, page through without repeats.
    let mut seen = HashSet::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_runs(ListRunsRequest { status: RunStatus::Succeeded as i32, page_size: 5, page_token: token.clone() })
            .await
            .unwrap()
            .into_inner();
        for run in &page.runs {
            assert_eq!(run.status(), RunStatus::Succeeded);
            assert!(seen.insert(run.run_id.clone()), "run listed twice");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen.len(),
        15,
        "12 runs, the idempotent one, the parked one and grpcurl's (the other tenant's is not listed)"
    );
    let none = client
        .list_runs(ListRunsRequest { status: RunStatus::Failed as i32, page_size: 5, page_token: String::new() })
        .await
        .unwrap();
    assert!(none.into_inner().runs.is_empty());
}

/// Runs `grpcurl -plaintext <flags> 127.0.0.1:<port> <args>`; its output.
async fn grpcurl(port: u16, flags: &[&str], args: &[&str]) -> String {
    let exe = baton_testkit::find_executable("grpcurl").expect("grpcurl not found: run scripts/install-deps.sh");
    let out = tokio::process::Command::new(exe)
        .arg("-plaintext")
        .args(flags)
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "grpcurl {flags:?} {args:?}: {text}");
    text
}

async fn channel_to(stack: &Stack) -> tonic::transport::Channel {
    let endpoint = format!("http://127.0.0.1:{}", stack.grpc_port);
    tonic::transport::Endpoint::from_shared(endpoint).unwrap().connect().await.unwrap()
}

/// Lists the services through reflection v1 and v1alpha; both must name the API.
async fn assert_reflection_lists_the_services(channel: tonic::transport::Channel) {
    use tonic_reflection::pb::{v1, v1alpha};
    let ask = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
        ..Default::default()
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut replies = client.server_reflection_info(tokio_stream::iter(vec![ask])).await.unwrap().into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = reply.message_response
    else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"baton.v1.RunService".to_string()) && names.contains(&"baton.v1.AdminService".to_string()));
    let ask = v1alpha::ServerReflectionRequest {
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        ..Default::default()
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let mut replies = client.server_reflection_info(tokio_stream::iter(vec![ask])).await.unwrap().into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) = reply.message_response
    else {
        panic!("no service list over v1alpha")
    };
    assert!(list.service.iter().any(|s| s.name == "baton.v1.RunService"), "{:?}", list.service);
}

/// A submit answers in bounded time whatever the broker does: with the broker frozen (SIGSTOP:
/// its port open, nothing answered) SubmitRun still answers once the run is durable in Redis,
/// and the run completes after the broker comes back (the reaper dispatches it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_answers_in_bounded_time_with_the_broker_frozen() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_RUNS_DISPATCH_GRACE_MS".into(), "2000".into()));
    let mut stack = Stack::full("frozen", opts).await;
    let mut client = stack.client().await;
    let warm = submit(&mut client, echoes(1), "").await;
    watch_to_end(&mut client, &warm, Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));

    stack.broker.proc.freeze();
    let asked = std::time::Instant::now();
    let request = SubmitRunRequest { spec: Some(echoes(2)), idempotency_key: String::new() };
    let answer = tokio::time::timeout(Duration::from_secs(20), client.submit_run(request))
        .await
        .expect("SubmitRun did not answer within 20 s with the broker frozen")
        .expect("the run is stored even though the broker is frozen")
        .into_inner();
    // The bound is `gateway.submit_dispatch_wait_ms` (1 s) plus the Redis writes: far below 20 s.
    println!("SubmitRun answered in {:?} with the broker frozen", asked.elapsed());
    assert_eq!(answer.status(), RunStatus::Queued);
    let stored = client.get_run(GetRunRequest { run_id: answer.run_id.clone(), latest_steps: 0 }).await.unwrap();
    assert_eq!(stored.into_inner().status(), RunStatus::Queued);

    // A frozen tansu does not recover by itself: restart it, as an operator would.
    stack.broker.restart(&stack.dir).await;
    let events = watch_to_end(&mut client, &answer.run_id, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert_eq!(baton_testkit::runs::final_status(&events), RunStatus::Succeeded);
}
