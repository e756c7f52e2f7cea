//! `batonctl readiness`: the production-readiness checklist against a live deployment. The
//! gateway judges what its config and Redis show (AdminService/CheckReadiness); this adds what
//! only Prometheus can answer — are Baton's metrics scraped, are its alert rules loaded — from
//! `--prometheus URL`. Prints owner, status, evidence and next action per item; exits 4 when a
//! blocking item fails.

use std::process::ExitCode;
use std::time::Duration;

use baton_proto::v1::{CheckReadinessRequest, ReadinessItem};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::format::one_line;
use crate::output::Printer;
use batonctl::client::Client;

/// Exit status when a blocking item fails.
const NOT_READY: u8 = 4;

/// Runs the checklist; the exit status says whether the deployment is ready.
pub async fn run(client: &mut Client, printer: Printer, prometheus: Option<String>) -> anyhow::Result<ExitCode> {
    let mut items = client.admin.check_readiness(client.request(CheckReadinessRequest {})).await?.into_inner().items;
    items.extend(prometheus_items(prometheus.as_deref()).await);
    let ready = !items.iter().any(|i| i.blocking && i.status == "fail");
    if printer.json {
        let list: Vec<Value> = items
            .iter()
            .map(|i| {
                json!({"name": i.name, "owner": i.owner, "status": i.status, "blocking": i.blocking,
                "evidence": i.evidence, "next_action": i.next_action})
            })
            .collect();
        println!("{}", json!({ "ready": ready, "items": list }));
    } else {
        for i in &items {
            let mut line = format!(
                "{:<4} {:<22} owner={} evidence={}",
                i.status,
                i.name,
                i.owner.replace(' ', "_"),
                one_line(&i.evidence)
            );
            if !i.next_action.is_empty() {
                line.push_str(&format!(" next={}", one_line(&i.next_action)));
            }
            println!("{line}");
        }
        println!("{}", if ready { "ready" } else { "NOT READY: a blocking item fails" });
    }
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(NOT_READY) })
}

fn item(name: &str, ok: bool, evidence: String, next: &str) -> ReadinessItem {
    ReadinessItem {
        name: name.into(),
        owner: "platform".into(),
        status: if ok { "pass" } else { "fail" }.into(),
        blocking: true,
        evidence,
        next_action: if ok { String::new() } else { next.into() },
    }
}

/// "metrics scraped" and "alerts loaded", from Prometheus's HTTP API.
async fn prometheus_items(url: Option<&str>) -> Vec<ReadinessItem> {
    let Some(url) = url else {
        let not_checked = || "not checked: no --prometheus URL given".to_string();
        return vec![
            item(
                "metrics scraped",
                false,
                not_checked(),
                "pass --prometheus http://HOST:PORT of the Prometheus that scrapes Baton",
            ),
            item(
                "alerts loaded",
                false,
                not_checked(),
                "pass --prometheus http://HOST:PORT of the Prometheus that evaluates Baton's alerts",
            ),
        ];
    };
    let scraped = match get_json(url, "/api/v1/query?query=count%28baton_service_ready%29").await {
        Ok(v) => {
            let n = v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
            item(
                "metrics scraped",
                n > 0.0,
                format!("{n} Baton services scraped by {url}"),
                "add every service's ops endpoint (/metrics) to Prometheus's scrape config",
            )
        }
        Err(e) => item("metrics scraped", false, format!("{url}: {e}"), "check the --prometheus URL"),
    };
    let alerts = match get_json(url, "/api/v1/rules?type=alert").await {
        Ok(v) => {
            let names: Vec<String> = v["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .filter(|n| n.starts_with("Baton"))
                .collect();
            item(
                "alerts loaded",
                !names.is_empty(),
                format!("{} Baton alert rules loaded", names.len()),
                "load charts/baton/alerts/baton.rules.yaml into Prometheus (rule_files)",
            )
        }
        Err(e) => item("alerts loaded", false, format!("{url}: {e}"), "check the --prometheus URL"),
    };
    vec![scraped, alerts]
}

/// `GET path` on an `http://host:port` URL, parsed as JSON (plain HTTP/1.0, no TLS).
async fn get_json(url: &str, path: &str) -> anyhow::Result<Value> {
    let hostport = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported"))?
        .trim_end_matches('/');
    let connect = tokio::net::TcpStream::connect(hostport);
    let mut stream = tokio::time::timeout(Duration::from_secs(5), connect).await??;
    let host = hostport.split(':').next().unwrap_or(hostport);
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("not an HTTP answer"))?;
    if head.split_whitespace().nth(1).is_none_or(|code| code != "200") {
        anyhow::bail!("HTTP {}", head.lines().next().unwrap_or_default());
    }
    Ok(serde_json::from_str(body)?)
}
