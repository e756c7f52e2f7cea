//! A run keeps its worker between steps: with a slice of five steps, a twelve-step run is
//! claimed three times (5 + 5 + 2 steps), every step still committed once, in order; every event
//! it committed reaches baton.events; and its history pages through ListSteps and batonctl.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_proto::v1::{GetRunRequest, ListStepsRequest};
use baton_testkit::runs::{check_history, echoes, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};

/// The value of the first sample of `name` with exactly `labels` in Prometheus text.
fn sample(metrics: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{labels} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix:?} in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_its_worker_for_a_slice_then_goes_back_through_its_lane() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_WORKER_SLICE_MAX_STEPS".into(), "5".into()));
    let stack = Stack::full("slices", opts).await;
    let mut client = stack.client().await;
    let id = submit(&mut client, echoes(12), "").await;
    let events = watch_to_end(&mut client, &id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(check_history(&events), Ok(12), "{events:?}");
    let metrics = stack.metrics(stack.find("worker")).await;
    assert_eq!(sample(&metrics, "baton_worker_claims_total", r#"{result="granted"}"#), 3.0, "5 + 5 + 2 steps");
    assert_eq!(sample(&metrics, "baton_worker_steps_total", r#"{outcome="continued"}"#), 9.0);
    assert_eq!(sample(&metrics, "baton_worker_steps_total", r#"{outcome="advanced"}"#), 2.0, "two slice ends");

    let store = stack.store();
    let audit = baton_testkit::events_audit::audit(
        &store,
        &stack.broker.bootstrap(),
        std::slice::from_ref(&id),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(audit.committed, events.len());
    assert!(audit.missing.is_empty(), "{:?}", audit.missing);

    // GetRun shows the latest steps; ListSteps pages through all of them, in order.
    let run = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 3 }).await.unwrap().into_inner();
    assert_eq!(run.steps_completed, 12);
    assert_eq!(run.steps.iter().map(|s| s.step).collect::<Vec<_>>(), vec![9, 10, 11]);
    let (mut token, mut seen) = (String::new(), Vec::new());
    loop {
        let req = ListStepsRequest { run_id: id.clone(), page_size: 5, page_token: token };
        let page = client.list_steps(req).await.unwrap().into_inner();
        assert_eq!(page.total, 12);
        seen.extend(page.steps.iter().map(|s| s.step));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, (0..12).collect::<Vec<u32>>());
    let bad = ListStepsRequest { run_id: id.clone(), page_size: 5, page_token: "x".into() };
    assert_eq!(client.list_steps(bad).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let out = std::process::Command::new(baton_testkit::bin_path("batonctl"))
        .args(["steps", &id, "--page-size", "5", "--all"])
        .env("BATON_ADDR", format!("http://127.0.0.1:{}", stack.grpc_port))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 12, "{text}");
    assert!(text.lines().nth(11).unwrap().starts_with("step=11 completed tool=echo"), "{text}");
}
