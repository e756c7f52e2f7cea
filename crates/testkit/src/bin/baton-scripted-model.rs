//! `baton-scripted-model --port P --script FILE`: an OpenAI-compatible chat-completions server
//! that answers from a script instead of a model — deterministic, instant, offline. For demos
//! and for trying the `model` planner without a model (see examples/support-agent). The script
//! maps a goal (or `*`) to the replies of each turn; see `baton_testkit::model_server::parse_script`.

use std::process::ExitCode;

use baton_testkit::model_server::{parse_script, ModelServer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let (Some(port), Some(path)) = (flag("--port").and_then(|p| p.parse::<u16>().ok()), flag("--script")) else {
        eprintln!("usage: baton-scripted-model --port PORT --script FILE.json");
        return ExitCode::from(2);
    };
    let script = match std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| parse_script(&t)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("baton-scripted-model: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match ModelServer::start(port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("baton-scripted-model: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    server.answer_by_turn();
    for (goal, replies) in script {
        server.script(&goal, replies);
    }
    println!("scripted model listening on {}", server.base_url());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
