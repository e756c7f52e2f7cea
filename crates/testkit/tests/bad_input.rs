//! Bad input at the edge gets a clear gRPC status and writes nothing; a bad config stops a
//! service with exit code 2 and a one-line reason naming the key.
#![allow(clippy::unwrap_used)]

use baton_proto::v1::{GetRunRequest, ListRunsRequest, RunSpec, SubmitRunRequest, WatchRunRequest};
use baton_testkit::runs::{echoes, script};
use baton_testkit::{bin_path, Stack, StackOptions};
use tonic::Code;

async fn submit_err(stack: &Stack, spec: Option<RunSpec>) -> tonic::Status {
    let mut client = stack.client().await;
    client.submit_run(SubmitRunRequest { spec, idempotency_key: String::new() }).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses_and_write_nothing() {
    let mut stack = Stack::infra("bad-input", StackOptions::default()).await;
    stack.start_gateway().await;

    let e = submit_err(&stack, Some(script(&[]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("spec.planner.script.steps") && e.message().contains("empty"), "{e}");

    let e = submit_err(&stack, None).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("spec"), "{e}");

    let e = submit_err(&stack, Some(script(&[("echo", "{}"), ("launch_missiles", "{}")]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("steps[1].tool") && e.message().contains("launch_missiles"), "{e}");

    let e = submit_err(&stack, Some(script(&[("sleep", r#"{"ms":"soon"}"#)]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("steps[0].args_json"), "{e}");

    // Over the 1 MiB request limit: refused before decoding.
    let huge = format!(r#"{{"blob":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let e = submit_err(&stack, Some(script(&[("echo", &huge)]))).await;
    assert!(matches!(e.code(), Code::ResourceExhausted | Code::OutOfRange), "{e}");
    assert!(e.message().contains("too large") || e.message().contains("limit"), "{e}");
    // Under the request limit but over the per-step args limit.
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(100 * 1024));
    let e = submit_err(&stack, Some(script(&[("echo", &big)]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("args_json") && e.message().contains("limit"), "{e}");

    let mut spec = echoes(1);
    spec.budget = Some(baton_proto::v1::Budget { max_steps: 1_000_000, ..Default::default() });
    let e = submit_err(&stack, Some(spec)).await;
    assert!(e.message().contains("spec.budget.max_steps"), "{e}");

    let mut client = stack.client().await;
    let e = client
        .get_run(GetRunRequest { run_id: "0198a0b1-0000-7000-8000-000000000000".into(), latest_steps: 0 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("0198a0b1-0000-7000-8000-000000000000"), "{e}");
    let e = client.get_run(GetRunRequest { run_id: String::new(), latest_steps: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client.get_run(GetRunRequest { run_id: "a}b{c".into(), latest_steps: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client.watch_run(WatchRunRequest { run_id: "nope".into(), after_seq: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e =
        client.list_runs(ListRunsRequest { status: 0, page_size: 0, page_token: "garbage".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client
        .list_runs(ListRunsRequest { status: 0, page_size: 100_000, page_token: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let mut req = tonic::Request::new(SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() });
    req.metadata_mut().insert("x-baton-tenant", "no spaces allowed".parse().unwrap());
    let e = client.submit_run(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Nothing was written by any refused submit.
    let page = client.list_runs(ListRunsRequest::default()).await.unwrap().into_inner();
    assert!(page.runs.is_empty(), "refused submits left runs behind: {:?}", page.runs);
}

#[test]
fn a_bad_config_exits_2_naming_the_key() {
    for (key, value, named) in [
        ("BATON_WORKER_HEARTBEAT_MS", "999999", "worker.heartbeat_ms"),
        ("BATON_WORKER_CONCURENCY", "4", "BATON_WORKER_CONCURENCY"),
        ("BATON_KAFKA_PARTITIONS", "many", "partitions"),
    ] {
        let out = std::process::Command::new(bin_path("baton-worker")).env_clear().env(key, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
    let out = std::process::Command::new(bin_path("baton-gateway"))
        .env_clear()
        .args(["--dump-config", "--set", "gateway.max_watchers=7"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("max_watchers = 7"));
}
