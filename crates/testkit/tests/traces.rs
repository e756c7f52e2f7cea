//! Traces across Kafka, into a real OTLP/gRPC receiver: a run submitted to the gateway, executed
//! by a worker, retried through the scheduler's tier topic and parked on a timer, is one trace —
//! every span of it shares the submit's trace id, and every parent link resolves to a span that
//! was exported.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use baton_testkit::otlp::OtlpReceiver;
use baton_testkit::runs::{script, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_is_one_trace_across_gateway_worker_and_scheduler() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut opts = StackOptions::default();
    opts.env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint()));
    opts.env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()));
    opts.env.push(("BATON_SCHEDULER_RETRY_TIERS_MS".into(), "[200, 1000]".into()));
    let stack = Stack::full("traces", opts).await;
    let mut client = stack.client().await;
    // A step, a retry (the first attempt fails), a timer, and a last step.
    let spec =
        script(&[("echo", "{}"), ("flaky", r#"{"fail_attempts":1}"#), ("wait", r#"{"ms":300}"#), ("echo", "{}")]);
    let id = submit(&mut client, spec, "").await;
    watch_to_end(&mut client, &id, Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));

    // The spans that name the run: the worker's slices and steps, the gateway's submit is their root.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (spans, of_run) = loop {
        let spans = receiver.spans();
        let of_run: Vec<_> = spans.iter().filter(|s| s.attribute("run_id") == Some(id.as_str())).cloned().collect();
        let slices = of_run.iter().filter(|s| s.name == "slice").count();
        if slices >= 3 {
            break (spans, of_run);
        }
        assert!(Instant::now() < deadline, "spans of the run did not arrive: {of_run:#?}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let traces: HashSet<&str> = of_run.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "the run's spans are spread over traces: {of_run:#?}");
    let trace = *traces.iter().next().unwrap();
    let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let services: HashSet<&str> = in_trace.iter().map(|s| s.service.as_str()).collect();
    assert!(services.contains("gateway") && services.contains("worker"), "{services:?}");
    let roots: Vec<_> = in_trace.iter().filter(|s| s.parent_span_id.is_empty()).collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    assert_eq!(roots[0].service, "gateway", "the submit is the root: {roots:#?}");
    let ids: HashSet<&str> = in_trace.iter().map(|s| s.span_id.as_str()).collect();
    for s in &in_trace {
        assert!(
            s.parent_span_id.is_empty() || ids.contains(s.parent_span_id.as_str()),
            "broken parent link: {s:#?} (spans: {in_trace:#?})"
        );
    }
    assert!(of_run.iter().any(|s| s.name == "step"), "step spans are exported: {of_run:#?}");
    // Each tool call is a client span under its step; slices carry OTel messaging attributes.
    let steps: HashSet<&str> = of_run.iter().filter(|s| s.name == "step").map(|s| s.span_id.as_str()).collect();
    let calls: Vec<_> = in_trace.iter().filter(|s| s.name == "tool_call").collect();
    assert!(calls.len() >= 4, "a span per tool call (echo, flaky twice, echo): {calls:#?}");
    for c in &calls {
        assert!(steps.contains(c.parent_span_id.as_str()), "a tool call outside a step: {c:#?}");
    }
    assert!(calls.iter().any(|c| c.attribute("tool") == Some("flaky") && c.attribute("outcome") == Some("retryable")));
    let slice = of_run.iter().find(|s| s.name == "slice").unwrap();
    assert_eq!(slice.attribute("messaging.system"), Some("kafka"), "{slice:#?}");
    assert_eq!(slice.attribute("messaging.destination.name"), Some("baton.tasks.main"), "{slice:#?}");
}
