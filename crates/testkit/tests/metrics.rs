//! Every service's `/metrics` over real processes: not empty when idle (every series registered
//! at start, gauges that mean something), latencies as histograms with buckets (they aggregate
//! across instances), and accepted by `promtool check metrics` before and after work.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use baton_testkit::find_executable;
use baton_testkit::runs::{echoes, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};

/// Runs `promtool check metrics` on `text`; returns its complaints (empty when clean).
fn promtool_check(text: &str) -> String {
    let promtool = find_executable("promtool").expect("promtool not found: run scripts/install-deps.sh");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let complaints = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        String::new()
    } else {
        complaints
    }
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exports_lint_clean_metrics_idle_and_busy() {
    let stack = Stack::full("metrics", StackOptions::default()).await;
    let services = ["gateway", "worker", "scheduler", "reaper"];
    // Idle: every service has series, and the fleet gauges have been sampled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in services {
        let text = stack.metrics(stack.find(name)).await;
        assert!(text.lines().filter(|l| l.starts_with("baton_")).count() >= 3, "{name} exports too little:\n{text}");
        assert_eq!(value(&text, "baton_service_ready"), Some(1.0), "{name}:\n{text}");
        assert!(value(&text, "baton_service_loop_tick_age_seconds").unwrap() < 10.0, "{name}");
        assert_eq!(promtool_check(&text), "", "{name}'s idle /metrics:\n{text}");
    }
    let reaper = stack.metrics(stack.find("reaper")).await;
    assert_eq!(value(&reaper, "baton_fleet_workers"), Some(1.0), "{reaper}");
    assert_eq!(value(&reaper, "baton_fleet_dead_letters"), Some(0.0));

    // Busy: runs complete; latencies are histograms; everything still lints.
    let mut client = stack.client().await;
    let id = submit(&mut client, echoes(5), "").await;
    watch_to_end(&mut client, &id, Duration::from_secs(60)).await.unwrap();
    for name in services {
        let text = stack.metrics(stack.find(name)).await;
        assert_eq!(promtool_check(&text), "", "{name}'s /metrics after a run:\n{text}");
        assert!(!text.contains("quantile="), "{name} exports a summary; histograms aggregate, summaries do not");
    }
    let worker = stack.metrics(stack.find("worker")).await;
    assert!(worker.contains("# TYPE baton_worker_step_duration_seconds histogram"), "{worker}");
    // Step durations by the tool the step called and how it ended.
    let echo_step = "baton_worker_step_duration_seconds_count{tool=\"echo\",outcome=\"completed\"}";
    assert_eq!(value(&worker, echo_step), Some(5.0), "{worker}");
    assert!(
        worker.contains("baton_worker_step_duration_seconds_bucket{tool=\"echo\",outcome=\"completed\",le=\"0.001\"}")
    );
    // Every service says which version it runs.
    for name in services {
        let text = stack.metrics(stack.find(name)).await;
        assert!(text.contains(&format!("baton_build_info{{service=\"{name}\",version=\"")), "{name}:\n{text}");
    }
    assert!(value(&worker, "baton_worker_claims_total{result=\"granted\"}").unwrap() >= 1.0);
    let gateway = stack.metrics(stack.find("gateway")).await;
    assert_eq!(value(&gateway, "baton_gateway_submits_total{result=\"admitted\"}"), Some(1.0));
    // The reaper reads the lane's consumer lag from the broker: a series per partition, back
    // to 0 once the worker group committed past the run's tasks.
    let lag = "baton_lane_consumer_lag{lane=\"main\",partition=\"0\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reaper = stack.metrics(stack.find("reaper")).await;
        if value(&reaper, lag) == Some(0.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no {lag} 0 from the reaper:\n{reaper}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
