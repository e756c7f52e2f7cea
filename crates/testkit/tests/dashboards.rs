//! The Grafana dashboards (`charts/baton/dashboards/*.json`): every panel's PromQL is evaluated
//! by a real Prometheus (the `prometheus` binary from scripts/install-deps.sh) scraping a running
//! stack after a short load, and must return series. `batonctl readiness` is checked against
//! the same kind of deployment: a real Prometheus with Baton's alert rules loaded.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton_testkit::runs::{script, submit, watch_to_end};
use baton_testkit::{find_executable, free_port, http_get, wait_for_port, Proc, Stack, StackOptions};
use serde_json::Value;

fn dashboards() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/baton/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p: PathBuf| {
            (p.display().to_string(), serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every `(dashboard, panel title, expr)`.
fn panel_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (file, board) in dashboards() {
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let title = panel["title"].as_str().unwrap().to_string();
                out.push((file.clone(), title, target["expr"].as_str().unwrap().to_string()));
            }
        }
    }
    out
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Evaluates `expr` now; the parsed API answer.
async fn query(port: u16, expr: &str) -> Value {
    let path = format!("/api/v1/query?query={}", percent_encode(expr));
    let (_, body) = http_get(port, &path).await.expect("prometheus answers");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A real Prometheus scraping every service of `stack` each second (with Baton's alert rules
/// when `rules`); the process and its port.
async fn start_prometheus(stack: &Stack, rules: bool) -> (Proc, u16) {
    let targets: Vec<String> =
        stack.services.iter().filter_map(|p| p.ops_port).map(|port| format!("'127.0.0.1:{port}'")).collect();
    let rule_files = if rules {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/baton/alerts/baton.rules.yaml");
        format!("rule_files: ['{}']\n", path.canonicalize().unwrap().display())
    } else {
        String::new()
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rule_files}scrape_configs:\n  - job_name: baton\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let config_path = stack.write_file("prometheus.yml", &config);
    let port = free_port();
    let prometheus = find_executable("prometheus").expect("prometheus not found: run scripts/install-deps.sh");
    let args: Vec<String> = vec![
        format!("--config.file={}", config_path.display()),
        format!("--storage.tsdb.path={}", stack.dir.path().join("prometheus-data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let process = Proc::spawn("prometheus", &prometheus, &args, &[], stack.dir.path());
    assert!(wait_for_port(port, Duration::from_secs(30)).await, "prometheus did not start:\n{}", process.log_text());
    (process, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_judges_a_live_deployment() {
    let stack = Stack::full("readiness", StackOptions::default()).await;
    let (_prometheus, port) = start_prometheus(&stack, true).await;
    let readiness = |prometheus: Option<String>| {
        let mut cmd = std::process::Command::new(baton_testkit::bin_path("batonctl"));
        cmd.args(["--addr", &format!("http://127.0.0.1:{}", stack.grpc_port), "--json", "readiness"]);
        if let Some(url) = prometheus {
            cmd.args(["--prometheus", &url]);
        }
        let out = cmd.output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        (out.status.code(), report)
    };
    let status_of = |report: &Value, name: &str| -> String {
        let items = report["items"].as_array().unwrap();
        let item = items.iter().find(|i| i["name"] == name).unwrap_or_else(|| panic!("no item {name}: {report}"));
        assert!(!item["owner"].as_str().unwrap().is_empty() && !item["evidence"].as_str().unwrap().is_empty());
        item["status"].as_str().unwrap().to_string()
    };
    // Wait until Prometheus has scraped the services and loaded the rules.
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (code, report) = loop {
        let (code, report) = readiness(Some(url.clone()));
        if status_of(&report, "metrics scraped") == "pass" && status_of(&report, "alerts loaded") == "pass" {
            break (code, report);
        }
        assert!(Instant::now() < deadline, "prometheus never showed Baton's metrics and alerts: {report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for name in ["structured logs", "timeouts configured", "retry policy", "workers live"] {
        assert_eq!(status_of(&report, name), "pass", "{name}: {report}");
    }
    // Nobody has operated this fleet yet (tests/readiness.rs shows these passing once someone has).
    for name in ["audit log", "human override"] {
        assert_eq!(status_of(&report, name), "fail", "{name}: {report}");
    }
    // The test stack sets no tenant cap: a blocking item fails, and the exit status says so.
    assert_eq!(status_of(&report, "limits set"), "fail");
    assert_eq!((code, report["ready"].as_bool()), (Some(4), Some(false)));
    assert_eq!(status_of(&report, "canary and rollback"), "warn", "one lane: not blocking");
    // Without Prometheus nothing vouches for monitoring.
    let (_, report) = readiness(None);
    assert_eq!(status_of(&report, "metrics scraped"), "fail");
}

#[test]
fn dashboards_are_well_formed() {
    let boards = dashboards();
    assert_eq!(boards.len(), 3, "overview, tools and fleet");
    for (file, board) in &boards {
        assert!(board["uid"].as_str().is_some_and(|u| u.starts_with("baton-")), "{file}");
        let panels = board["panels"].as_array().unwrap();
        assert!(panels.len() >= 8, "{file}");
        let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), panels.len(), "{file}: panel ids are unique");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_series_from_a_real_prometheus() {
    let stack = Stack::full("dashboards", StackOptions::default()).await;
    let (_prometheus, port) = start_prometheus(&stack, false).await;

    // A short load: runs with several steps, a sleep, and the ledger.
    let mut client = stack.client().await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        let spec = script(&[("echo", "{}"), ("sleep", r#"{"ms":50}"#), ("ledger", "{}"), ("echo", "{}")]);
        ids.push(submit(&mut client, spec, "").await);
    }
    for id in &ids {
        watch_to_end(&mut client, id, Duration::from_secs(60)).await.unwrap();
    }
    // Let Prometheus scrape the finished load a few times.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = query(port, "sum(baton_runs_finished_total)").await;
        let done = answer["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
        if done == Some(ids.len() as f64) {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus never saw the runs finish: {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut empty = Vec::new();
    for (file, title, expr) in panel_queries() {
        let expr = expr.replace("$__rate_interval", "30s");
        let answer = query(port, &expr).await;
        assert_eq!(answer["status"], "success", "{file} / {title}: {expr}: {answer}");
        if answer["data"]["result"].as_array().is_none_or(Vec::is_empty) {
            empty.push(format!("{file} / {title}: {expr}"));
        }
    }
    assert!(empty.is_empty(), "panels without series after the load:\n{}", empty.join("\n"));
}
