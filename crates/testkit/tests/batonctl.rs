//! `batonctl` as an operator runs it: the real binary as a subprocess against the real stack,
//! every subcommand at least once, checking exit statuses and what is printed, as text and as
//! `--json`. One stack without authentication drives the runs, the human gates, dead letters and
//! the fleet's switches; a second, with `auth.mode = "required"`, follows docs/security.md's
//! bootstrap of API keys command by command, exactly as written there.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{RetryPolicy, Run, RunStatus};
use baton_testkit::agents::{eventually, AgentStack};
use baton_testkit::runs::{script, submit, wait_for_run, wait_for_status};
use baton_testkit::tool_server::Behavior;
use baton_testkit::{bin_path, Stack, StackOptions};
use serde_json::Value;
use tonic::transport::Channel;

const WITHIN: Duration = Duration::from_secs(60);

/// A second lane, `canary`, that no worker serves and no new run goes to unless told.
const CANARY: &str =
    "\n[runs]\nlanes = [\"main\", \"canary\"]\n\n[lanes.main]\nweight = 100\n\n[lanes.canary]\nweight = 0\n";

/// What one batonctl process did.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs batonctl against one gateway with a fixed environment (and no other BATON_* variable).
struct Ctl {
    env: HashMap<String, String>,
}

impl Ctl {
    fn new(grpc_port: u16) -> Self {
        let mut env = HashMap::new();
        env.insert("BATON_ADDR".to_string(), format!("http://127.0.0.1:{grpc_port}"));
        Self { env }
    }

    async fn run(&self, args: &[&str]) -> Out {
        let mut command = tokio::process::Command::new(bin_path("batonctl"));
        command.args(args);
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_")) {
            command.env_remove(name);
        }
        command.envs(&self.env);
        let out = tokio::time::timeout(WITHIN, command.output()).await.expect("batonctl did not exit").unwrap();
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Runs `args`, which must exit 0; its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, Some(0), "batonctl {args:?}: {out:?}");
        out.stdout
    }

    /// Runs `--json args`, which must exit 0; each stdout line as JSON.
    async fn json(&self, args: &[&str]) -> Vec<Value> {
        let argv: Vec<&str> = std::iter::once("--json").chain(args.iter().copied()).collect();
        let stdout = self.ok(&argv).await;
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("batonctl {argv:?}: {e}: {l}")))
            .collect()
    }

    /// Runs `args`, which must exit with `code`; the output.
    async fn fails(&self, args: &[&str], code: i32) -> Out {
        let out = self.run(args).await;
        assert_eq!(out.code, Some(code), "batonctl {args:?}: {out:?}");
        out
    }
}

async fn waiting(client: &mut RunServiceClient<Channel>, id: &str, reason: &str, stack: &Stack) -> Run {
    wait_for_run(client, id, WITHIN, |r| r.status() == RunStatus::Waiting && r.wait_reason == reason)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()))
}

async fn ended(client: &mut RunServiceClient<Channel>, id: &str, status: RunStatus, stack: &Stack) -> Run {
    wait_for_status(client, id, status, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_works_as_a_process_against_the_real_stack() {
    let mut a = AgentStack::start("batonctl", |o| {
        o.env.push(("BATON_SWITCHES_REFRESH_MS".into(), "200".into()));
        o.config_toml.push_str(CANARY);
    })
    .await;
    let mut client = a.stack.client().await;
    let mut ctl = Ctl::new(a.stack.grpc_port);
    ctl.env.insert("BATON_ACTOR".into(), "ops-test".into());

    // submit (idempotent), watch, get, steps, list.
    let echo = ["submit", "--step", r#"echo:{"msg":"hi"}"#, "--step", r#"sleep:{"ms":10}"#, "--idempotency-key", "k1"];
    let id = ctl.ok(&echo).await.trim().to_string();
    assert_eq!(id.len(), 36, "submit prints the run id: {id}");
    let again = &ctl.json(&echo).await[0];
    assert_eq!((again["run_id"].as_str(), again["deduplicated"].as_bool()), (Some(id.as_str()), Some(true)));
    let watched = ctl.ok(&["watch", &id]).await;
    assert!(watched.lines().next().unwrap().starts_with("seq=1 run_queued"), "{watched}");
    let last = watched.lines().last().unwrap();
    assert!(last.contains("run_finished") && last.contains("status=succeeded"), "{watched}");
    let events = ctl.json(&["watch", &id, "--after-seq", "1"]).await;
    assert_eq!(events.first().unwrap()["seq"], 2, "--after-seq skips what was seen");
    assert_eq!(events.last().unwrap()["kind"], "run_finished");
    let shown = ctl.ok(&["get", &id]).await;
    assert!(
        shown.contains("status     succeeded") && shown.contains("plan       script, 2 steps: echo sleep"),
        "{shown}"
    );
    let run = &ctl.json(&["get", &id]).await[0];
    assert_eq!((run["status"].as_str(), run["steps"].as_array().unwrap().len()), (Some("succeeded"), 2));
    let steps = ctl.ok(&["steps", &id, "--page-size", "1", "--all"]).await;
    assert_eq!(steps.lines().filter(|l| l.starts_with("step=")).count(), 2, "{steps}");
    let page = &ctl.json(&["steps", &id, "--page-size", "1"]).await[0];
    assert!(!page["next_page_token"].as_str().unwrap().is_empty(), "{page}");
    let listed = ctl.ok(&["list", "--status", "succeeded"]).await;
    assert!(listed.lines().any(|l| l.starts_with(&format!("{id} succeeded steps=2"))), "{listed}");
    let listed = &ctl.json(&["list"]).await[0];
    assert!(listed["runs"].as_array().unwrap().iter().any(|r| r["run_id"] == id.as_str()), "{listed}");
    let e = ctl.fails(&["get", "0198a0b1-0000-7000-8000-000000000000"], 1).await;
    assert!(e.stderr.starts_with("error: NOT_FOUND: "), "{e:?}");
    let e = ctl.fails(&["submit", "--goal", "no planner"], 2).await;
    assert!(e.stderr.contains("required"), "a usage error: {e:?}");

    // A run parked on a long wait: cancel ends it, and watching a cancelled run exits 3. A run
    // queued on the canary lane (no worker serves it) keeps the lane from draining until it ends.
    let parked = ctl.ok(&["submit", "--step", r#"wait:{"ms":600000}"#]).await.trim().to_string();
    waiting(&mut client, &parked, "timer", &a.stack).await;
    let cancelled = ctl.ok(&["cancel", &parked, "--reason", "no longer needed"]).await;
    assert!(cancelled.starts_with(&format!("{parked} status=")), "{cancelled}");
    ended(&mut client, &parked, RunStatus::Cancelled, &a.stack).await;
    let e = ctl.fails(&["watch", &parked], 3).await;
    assert!(e.stdout.lines().last().unwrap().contains("status=cancelled"), "{e:?}");
    let e = ctl.fails(&["cancel", &parked], 1).await;
    assert!(e.stderr.starts_with("error: FAILED_PRECONDITION: ") && e.stderr.contains("already ended"), "{e:?}");
    let queued = ctl.ok(&["submit", "--lane", "canary", "--step", "echo"]).await.trim().to_string();
    let e = ctl.fails(&["lanes", "drain", "canary", "--timeout-secs", "0", "--reason", "drill"], 3).await;
    assert!(e.stderr.contains("lane canary still holds 1 runs"), "{e:?}");
    assert!(e.stdout.lines().any(|l| l.starts_with("canary") && l.contains("weight     0")), "{e:?}");
    let cancelled = &ctl.json(&["cancel", &queued, "--reason", "drill"]).await[0];
    assert_eq!(cancelled["run_id"].as_str(), Some(queued.as_str()), "{cancelled}");
    ended(&mut client, &queued, RunStatus::Cancelled, &a.stack).await;
    let out = ctl.run(&["lanes", "drain", "canary", "--timeout-secs", "30", "--reason", "drill"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("lane canary is drained"), "{out:?}");

    // Tools: list and reload, and the four switches.
    let tools = ctl.ok(&["tools", "list"]).await;
    assert!(tools.lines().any(|l| l.starts_with("ship_order kind=http side_effect=write")), "{tools}");
    let tools = &ctl.json(&["tools", "list"]).await[0];
    assert!(tools["tools"].as_array().unwrap().iter().any(|t| t["name"] == "flaky"), "{tools}");
    let reloaded = ctl.ok(&["tools", "reload"]).await;
    assert!(reloaded.starts_with("unchanged version=") || reloaded.starts_with("reloaded version="), "{reloaded}");
    let reloaded = &ctl.json(&["tools", "reload"]).await[0];
    assert!(reloaded["changed"].is_boolean() && reloaded["tools"].as_u64() >= Some(4), "{reloaded}");
    let off = ctl.ok(&["tools", "disable", "lookup_order", "--reason", "backend degraded"]).await;
    assert!(off.starts_with("tool.disabled lookup_order=true by ops-test at "), "{off}");
    assert!(off.trim_end().ends_with(": backend degraded"), "{off}");
    let on = &ctl.json(&["tools", "enable", "lookup_order", "--reason", "recovered"]).await[0];
    assert_eq!((on["switch"].as_str(), on["value"].as_str()), (Some("tool.disabled"), Some("false")));
    let gate = ctl.ok(&["tools", "require-approval", "ship_order", "--reason", "carrier incident"]).await;
    assert!(gate.starts_with("tool.requires_approval ship_order=true by ops-test"), "{gate}");
    let e = ctl.fails(&["tools", "disable", "lookup_order"], 1).await;
    assert!(e.stderr.starts_with("error: INVALID_ARGUMENT: "), "a switch needs a reason: {e:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Approvals, required by that switch: list, approve one, deny the other.
    let ship = |order: &str| format!(r#"ship_order:{{"order_id":"{order}"}}"#);
    let (s1, s2) = (ship("S1"), ship("S2"));
    let approved = ctl.ok(&["submit", "--step", &s1]).await.trim().to_string();
    let denied = ctl.ok(&["submit", "--step", &s2]).await.trim().to_string();
    for id in [&approved, &denied] {
        waiting(&mut client, id, "approval", &a.stack).await;
    }
    let pending = ctl.ok(&["approvals", "list"]).await;
    assert_eq!(pending.lines().filter(|l| l.contains("tool=ship_order")).count(), 2, "{pending}");
    assert_eq!(pending.lines().filter(|l| l.contains(" required_by=operator pending")).count(), 2, "{pending}");
    let pending = ctl.json(&["approvals", "list", "--limit", "1"]).await;
    assert_eq!(pending.len(), 2, "one approval, then the next page's token: {pending:?}");
    assert_eq!(pending[0]["call"]["tool"], "ship_order");
    assert_eq!(pending[0]["approval"]["action_hash"].as_str().map(str::len), Some(64));
    let token = pending[1]["next_page_token"].as_str().expect("a next page").to_string();
    let rest = ctl.json(&["approvals", "list", "--limit", "1", "--page-token", &token]).await;
    assert_eq!(rest.len(), 1, "the last page has no token: {rest:?}");
    assert_ne!(rest[0]["run_id"], pending[0]["run_id"]);
    let all = ctl.ok(&["approvals", "list", "--limit", "1", "--all"]).await;
    assert_eq!(all.lines().filter(|l| l.contains("tool=ship_order")).count(), 2, "{all}");
    assert!(!all.contains("next_page_token"), "{all}");
    let out = ctl.run(&["approvals", "approve", &approved, "--comment", "checked"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.starts_with("action: step=0 tool=ship_order"), "the action is shown first: {out:?}");
    assert!(out.stdout.starts_with(&format!("approved {approved} status=")), "{out:?}");
    let decision = &ctl.json(&["approvals", "deny", &denied, "--comment", "no"]).await[0];
    assert_eq!(
        (decision["decision"].as_str(), decision["approval"]["actor"].as_str()),
        (Some("denied"), Some("ops-test"))
    );
    ended(&mut client, &approved, RunStatus::Succeeded, &a.stack).await;
    ended(&mut client, &denied, RunStatus::Refused, &a.stack).await;
    let e = ctl.fails(&["approvals", "approve", &approved], 1).await;
    assert!(e.stderr.contains("not waiting for an approval"), "{e:?}");
    ctl.ok(&["tools", "no-approval", "ship_order", "--reason", "incident over"]).await;
    assert_eq!(a.tools.calls("ship_order").len(), 1, "only the approved call went out");

    // Reconciliation: two non-idempotent calls cut off by a SIGKILL, then settled.
    a.tools.set("refund", Behavior::Slow(Duration::from_secs(20)));
    let refund = |order: &str| format!(r#"refund:{{"order_id":"{order}","amount":5}}"#);
    let (r1, r2) = (refund("X1"), refund("X2"));
    let done = ctl.ok(&["submit", "--step", &r1, "--step", "echo"]).await.trim().to_string();
    let failed = ctl.ok(&["submit", "--step", &r2]).await.trim().to_string();
    assert!(eventually(WITHIN, || a.tools.calls("refund").len() == 2).await, "{}", a.stack.logs());
    let worker = a.stack.find("worker");
    a.stack.services[worker].kill().await;
    a.stack.start("worker").await;
    for id in [&done, &failed] {
        waiting(&mut client, id, "needs_reconciliation", &a.stack).await;
    }
    let out = ctl.run(&["reconcile", &done, "--done", "--output", r#"{"id":"rf_1"}"#, "--comment", "bank"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("call: step=0 tool=refund") && out.stderr.contains("known: "), "{out:?}");
    assert!(out.stdout.starts_with(&format!("reconciled {done} done status=")), "{out:?}");
    let settled = &ctl.json(&["reconcile", &failed, "--fail", "--comment", "bank said no"]).await[0];
    assert_eq!(settled["decision"], "fail");
    let run = ended(&mut client, &done, RunStatus::Succeeded, &a.stack).await;
    assert_eq!(run.steps[0].output_json, r#"{"id":"rf_1"}"#);
    ended(&mut client, &failed, RunStatus::Failed, &a.stack).await;
    let e = ctl.fails(&["reconcile", &done, "--not-done"], 1).await;
    assert!(e.stderr.contains("does not need reconciliation"), "{e:?}");
    assert_eq!(a.tools.calls("refund").len(), 2, "no uncertain call was repeated");

    // Dead letters: list, requeue one (its tool works again by then), discard the other.
    let flaky = |args: &str| {
        let mut spec = script(&[("flaky", args)]);
        spec.retry = Some(RetryPolicy { max_attempts: 1, initial_backoff_ms: 100, max_backoff_ms: 100 });
        spec
    };
    let until = baton_testkit::now_ms() + 3_000;
    let requeued = submit(&mut client, flaky(&format!(r#"{{"fail_until_ms":{until}}}"#)), "").await;
    let discarded = submit(&mut client, flaky(r#"{"fail_rate":1.0}"#), "").await;
    for id in [&requeued, &discarded] {
        ended(&mut client, id, RunStatus::DeadLettered, &a.stack).await;
    }
    let letters = ctl.ok(&["dlq", "list"]).await;
    for id in [&requeued, &discarded] {
        let line = letters.lines().find(|l| l.starts_with(id.as_str())).unwrap_or_else(|| panic!("{letters}"));
        assert!(line.contains("tenant=default lane=main step=0 tool=flaky attempts=1"), "{line}");
    }
    let letters = &ctl.json(&["dlq", "list", "--tenant-filter", "default", "--limit", "10"]).await[0];
    assert_eq!(letters["dead_letters"].as_array().unwrap().len(), 2, "{letters}");
    tokio::time::sleep(Duration::from_millis((until - baton_testkit::now_ms()).max(0) as u64 + 100)).await;
    let out = ctl.ok(&["dlq", "requeue", &requeued]).await;
    assert!(out.starts_with(&format!("{requeued} requeued status=")), "{out}");
    ended(&mut client, &requeued, RunStatus::Succeeded, &a.stack).await;
    let out = &ctl.json(&["dlq", "discard", &discarded]).await[0];
    assert_eq!((out["run_id"].as_str(), out["discarded"].as_bool()), (Some(discarded.as_str()), Some(true)));
    let letters = ctl.ok(&["dlq", "list"]).await;
    assert!(letters.trim().is_empty(), "both dead letters are gone: {letters}");

    // Lanes: list, weights, rollback, routes, reset, pause and resume.
    let lanes = ctl.ok(&["lanes", "list"]).await;
    let main = lanes.lines().find(|l| l.starts_with("main")).unwrap_or_else(|| panic!("{lanes}"));
    assert!(main.contains("weight   100 (100.0 %, configured 100)"), "{lanes}");
    let lanes = &ctl.json(&["lanes", "list"]).await[0];
    let names: Vec<&str> = lanes["lanes"].as_array().unwrap().iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names, ["main", "canary"], "{lanes}");
    let set = ctl.ok(&["lanes", "weights", "main=90", "canary=10", "--reason", "canary at 10 %"]).await;
    assert!(set.lines().any(|l| l.starts_with("canary") && l.contains("weight    10 ( 10.0 %")), "{set}");
    let back = &ctl.json(&["lanes", "rollback", "canary", "--reason", "bad build"]).await[0];
    assert_eq!((back["lanes"][1]["name"].as_str(), back["lanes"][1]["weight"].as_u64()), (Some("canary"), Some(0)));
    ctl.ok(&["lanes", "weights", "canary=100", "--route", "acme", "--reason", "acme tries it"]).await;
    let route = ctl.ok(&["lanes", "list", "--route", "acme"]).await;
    assert!(route.lines().any(|l| l.starts_with("canary") && l.contains("weight   100")), "{route}");
    ctl.ok(&["lanes", "reset", "--route", "acme", "--reason", "done"]).await;
    let reset = ctl.ok(&["lanes", "reset", "--reason", "done"]).await;
    assert!(reset.lines().any(|l| l.starts_with("main") && l.contains("weight   100")), "{reset}");
    let paused = ctl.ok(&["lanes", "pause", "main", "--reason", "deploy"]).await;
    assert!(paused.starts_with("lane.paused main=true by ops-test"), "{paused}");
    let resumed = &ctl.json(&["lanes", "resume", "main", "--reason", "deployed"]).await[0];
    assert_eq!((resumed["switch"].as_str(), resumed["value"].as_str()), (Some("lane.paused"), Some("false")));

    // Tenants, limits, and the switches with their audit trail.
    let capped = ctl.ok(&["tenants", "cap", "acme", "5", "--reason", "noisy neighbour"]).await;
    assert!(capped.starts_with("tenant.max_active_runs acme=5 by ops-test"), "{capped}");
    let limit = &ctl.json(&["limits", "set", "tenant.submit_rate", "acme", "50", "--reason", "burst"]).await[0];
    assert_eq!((limit["switch"].as_str(), limit["value"].as_str()), (Some("tenant.submit_rate"), Some("50")));
    let e = ctl.fails(&["limits", "set", "tenant.nonsense", "acme", "1", "--reason", "r"], 1).await;
    assert!(e.stderr.starts_with("error: INVALID_ARGUMENT: "), "{e:?}");
    let switches = ctl.ok(&["switches"]).await;
    assert!(switches.starts_with("in force:\n"), "{switches}");
    assert!(switches.contains("  tenant.max_active_runs acme=5 by ops-test"), "{switches}");
    assert!(switches.contains("latest changes:\n  tenant.submit_rate acme=50"), "newest first: {switches}");
    let switches = &ctl.json(&["switches", "--audit-limit", "3"]).await[0];
    assert_eq!(switches["audit"].as_array().unwrap().len(), 3, "{switches}");
    assert!(switches["in_force"].as_array().unwrap().iter().any(|c| c["switch"] == "tenant.submit_rate"));

    // The readiness checklist: without a Prometheus to ask, blocking items fail (exit 4).
    let out = ctl.fails(&["readiness"], 4).await;
    assert!(out.stdout.trim_end().ends_with("NOT READY: a blocking item fails"), "{out:?}");
    assert!(out.stdout.lines().any(|l| l.starts_with("fail") && l.contains("metrics scraped")), "{out:?}");
    let out = ctl.fails(&["--json", "readiness"], 4).await;
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["ready"], false);
    assert!(report["items"].as_array().unwrap().iter().any(|i| i["name"] == "metrics scraped"), "{report}");
}

/// The fenced code blocks (language, text) of `section` in a docs page.
fn doc_blocks(page: &str, section: &str) -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(page)).unwrap();
    let start = text.find(section).unwrap_or_else(|| panic!("{page} has no {section:?}"));
    let rest = &text[start + section.len()..];
    let body = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in body.lines() {
        let fence = line.trim_start();
        match (fence.strip_prefix("```"), open.take()) {
            (Some(lang), None) => open = Some((lang.to_string(), String::new())),
            (Some(_), Some(block)) => blocks.push(block),
            (None, Some((lang, mut text))) => {
                text.push_str(fence);
                text.push('\n');
                open = Some((lang, text));
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Runs one documented shell line through `sh -c` with `env` and batonctl first on PATH.
async fn sh(line: &str, env: &HashMap<String, String>) -> Out {
    let bin_dir = bin_path("batonctl").parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = tokio::process::Command::new("sh");
    command.arg("-c").arg(line);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_")) {
        command.env_remove(name);
    }
    command.envs(env).env("PATH", path);
    let out = tokio::time::timeout(WITHIN, command.output()).await.expect("sh did not exit").unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// The secret a `keys create` answer shows (once).
fn secret_of(created: &str) -> String {
    let secret = created.lines().find_map(|l| l.strip_prefix("secret: ")).expect("a secret line");
    assert!(secret.starts_with("baton_"), "{secret}");
    secret.to_string()
}

/// The key id at the start of a `keys create` answer's first line.
fn key_id(created: &str) -> String {
    created.split_whitespace().next().unwrap_or_default().to_string()
}

/// docs/security.md, "Turning authentication on", run as written: the config of step 1, the
/// bootstrap command of step 2 (a key for every tenant, `--tenant '*'`), and step 3 after the
/// bootstrap key is gone. Only the doc's placeholders (`baton_…`, `key_0190…`) are filled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_key_bootstrap_works_as_written() {
    let blocks = doc_blocks("docs/security.md", "## Turning authentication on");
    let langs: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(langs, ["toml", "sh", "sh"], "the section's steps changed: {blocks:?}");
    let bootstrap_key: String = (0..32).map(|i| format!("{:02x}", (i * 37 + 11) % 256)).collect();

    // Step 1: the config, with the key in the variable it names.
    let mut opts = StackOptions { config_toml: blocks[0].1.clone(), ..StackOptions::default() };
    opts.env.push(("BOOTSTRAP_ADMIN_KEY".into(), bootstrap_key.clone()));
    let mut stack = Stack::infra("bootstrap", opts).await;
    stack.start_gateway().await;
    let mut env = HashMap::from([
        ("BATON_ADDR".to_string(), format!("http://127.0.0.1:{}", stack.grpc_port)),
        ("BOOTSTRAP_ADMIN_KEY".to_string(), bootstrap_key.clone()),
    ]);

    // Step 2: the bootstrap key makes the fleet's admin key; its secret is printed once.
    let step2: Vec<&str> = blocks[1].1.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(step2.len(), 1, "{step2:?}");
    let out = sh(step2[0], &env).await;
    assert_eq!(out.code, Some(0), "{}: {out:?}\n{}", step2[0], stack.logs());
    let first = out.stdout.lines().next().unwrap();
    assert!(first.contains(" tenant=* role=admin ") && first.contains("by=bootstrap"), "{out:?}");
    let secret = secret_of(&out.stdout);
    let mut made = HashMap::from([("platform-admins".to_string(), key_id(&out.stdout))]);

    // Step 3: the bootstrap key removed and the gateway restarted; keys are made with the new one.
    let gateway = stack.find("gateway");
    stack.services[gateway].terminate(Duration::from_secs(15)).await;
    stack.start_with("gateway", &[("BATON_AUTH_BOOTSTRAP_ADMIN_KEY_ENV", "")]).await;
    let mut outputs = Vec::new();
    for line in blocks[2].1.lines().filter(|l| !l.trim().is_empty()) {
        let checkout = made.get("checkout-service").cloned().unwrap_or_default();
        let line = line.replace("baton_…", &secret).replace("key_0190…", &checkout);
        if let Some(assignment) = line.strip_prefix("export ") {
            // `export NAME=VALUE  # comment`: later lines see the variable.
            let assignment = assignment.split('#').next().unwrap().trim();
            let (name, value) = assignment.split_once('=').unwrap();
            env.insert(name.to_string(), value.to_string());
            continue;
        }
        let out = sh(&line, &env).await;
        assert_eq!(out.code, Some(0), "{line}: {out:?}\n{}", stack.logs());
        if let Some(name) = line.split("--name ").nth(1).and_then(|n| n.split_whitespace().next()) {
            made.insert(name.to_string(), key_id(&out.stdout));
        }
        outputs.push((line, out.stdout));
    }
    let commands: Vec<&str> = outputs.iter().map(|(l, _)| l.split_whitespace().take(3).last().unwrap()).collect();
    assert_eq!(commands, ["create", "create", "list", "revoke"], "{outputs:?}");
    let listed = &outputs[2].1;
    for (name, tenant_role) in
        [("platform-admins", "tenant=* role=admin"), ("checkout-service", "tenant=acme role=submitter")]
    {
        let line = listed.lines().find(|l| l.ends_with(&format!("# {name}"))).unwrap_or_else(|| panic!("{listed}"));
        assert!(line.contains(tenant_role), "{line}");
    }
    assert!(!listed.contains("baton_"), "a listing never shows a secret: {listed}");
    assert!(outputs[3].1.starts_with(&format!("revoked {}", made["checkout-service"])), "{outputs:?}");

    // The bootstrap key is worth nothing now; the keys made with the admin key work.
    let ctl = Ctl::new(stack.grpc_port);
    let e = ctl.fails(&["--api-key", &bootstrap_key, "keys", "list"], 1).await;
    assert!(e.stderr.starts_with("error: UNAUTHENTICATED: "), "{e:?}");
    let oncall = secret_of(&outputs[1].1);
    let e = ctl.fails(&["--api-key", &secret_of(&outputs[0].1), "list"], 1).await;
    assert!(e.stderr.starts_with("error: UNAUTHENTICATED: ") && e.stderr.contains("revoked"), "{e:?}");
    let id = ctl.ok(&["--api-key", &oncall, "submit", "--step", "echo"]).await.trim().to_string();
    let listed = ctl.ok(&["--api-key", &oncall, "list"]).await;
    assert!(listed.starts_with(&format!("{id} queued")), "{listed}");
    let e = ctl.fails(&["--api-key", &oncall, "keys", "list"], 1).await;
    assert!(e.stderr.starts_with("error: PERMISSION_DENIED: "), "an operator manages no keys: {e:?}");
    // Without --tenant a key is made for the caller's own tenant (keys.proto): `*` for this admin.
    let own = &ctl.json(&["--api-key", &secret, "keys", "create", "--role", "submitter", "--name", "own"]).await[0];
    assert_eq!(
        (own["key"]["tenant"].as_str(), own["key"]["created_by"].as_str()),
        (Some("*"), Some(&*format!("key:{}", made["platform-admins"])))
    );
    let e = ctl.fails(&["--api-key", &secret, "--tenant", "bad tenant", "keys", "create", "--role", "admin"], 1).await;
    assert!(e.stderr.starts_with("error: INVALID_ARGUMENT: tenant: "), "{e:?}");
}
