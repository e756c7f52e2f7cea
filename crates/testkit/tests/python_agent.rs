//! The example agent in Python (examples/agent-python) drives runs over gRPC: its venv and stubs
//! are set up by the example's own script (pinned packages from PyPI), it runs as a separate
//! process, and Baton calls the stack's HTTP tool with the step's key. A failing tool is explained
//! by the agent, not hidden.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use baton_proto::v1::{GetRunRequest, RunStatus};
use baton_testkit::agents::AgentStack;
use baton_testkit::runs::{check_history, submit, watch_to_end};
use baton_testkit::tool_server::Behavior;
use baton_testkit::{free_port, wait_for_port, Proc};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_agent_drives_runs_over_grpc() {
    let root = repo();
    let setup = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new("bash").arg(root.join("examples/agent-python/setup.sh")).output(),
    )
    .await
    .expect("setup.sh within 10 minutes")
    .unwrap();
    assert!(setup.status.success(), "setup.sh failed:\n{}", String::from_utf8_lossy(&setup.stderr));
    let python = String::from_utf8(setup.stdout).unwrap().lines().last().unwrap().trim().to_string();

    let port = free_port();
    let config = format!("\n[agents.python]\nendpoint = \"http://127.0.0.1:{port}\"\ntimeout_ms = 10000\n");
    let mut a = AgentStack::start("python-agent", |opts| opts.config_toml.push_str(&config)).await;
    let env: Vec<(String, String)> =
        ["PATH", "HOME"].iter().filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?))).collect();
    let agent = Proc::spawn(
        "python-agent",
        std::path::Path::new(&python),
        &[root.join("examples/agent-python/agent.py").display().to_string(), "--port".into(), port.to_string()],
        &env,
        a.stack.dir.path(),
    );
    assert!(wait_for_port(port, Duration::from_secs(30)).await, "the agent did not start:\n{}", agent.log_text());
    a.stack.services.push(agent);
    let mut client = a.stack.client().await;

    let id =
        submit(&mut client, baton_core::plan::agent_spec("python", "status of order A1", &["lookup_order"]), "").await;
    let events = watch_to_end(&mut client, &id, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", a.stack.logs()));
    check_history(&events).unwrap();
    let run = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 0 }).await.unwrap().into_inner();
    assert_eq!(run.status(), RunStatus::Succeeded, "{run:#?}\n{}", a.stack.logs());
    let calls = a.tools.calls("lookup_order");
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].idempotency_key.clone(), calls[0].body["order_id"].clone()), (format!("{id}:0"), "A1".into()));
    // The stack's tool server answers {"tool", "args", "call"}: the agent summarises what it got.
    assert!(run.result.starts_with("Order ? is unknown"), "{}", run.result);

    a.tools.set("lookup_order", Behavior::Always(404));
    let id =
        submit(&mut client, baton_core::plan::agent_spec("python", "where is order Z9", &["lookup_order"]), "").await;
    watch_to_end(&mut client, &id, Duration::from_secs(60)).await.unwrap();
    let run = client.get_run(GetRunRequest { run_id: id, latest_steps: 0 }).await.unwrap().into_inner();
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert!(
        run.result.starts_with("I could not look the order up:") && run.result.contains("HTTP 404"),
        "{}",
        run.result
    );
}
