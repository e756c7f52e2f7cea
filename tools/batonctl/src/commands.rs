//! One function per subcommand: build the request, call the gateway, print the answer.

use std::process::ExitCode;

use baton_proto::v1::{
    planner, AgentPlanner, Budget, CancelRunRequest, EventKind, GetRunRequest, ListRunsRequest, ListStepsRequest,
    ListToolsRequest, ModelPlanner, Planner, ReloadToolsRequest, RunSpec, RunStatus, ScriptPlan, SetToolSwitchRequest,
    SubmitRunRequest, WatchRunRequest,
};

use crate::cli::{Cli, Command, ListArgs, SubmitArgs, ToolsCommand};
use crate::output::Printer;
use crate::{dlq, gates};
use batonctl::client::{Client, Connect};

/// Exit status when a watched run ended in any status but `succeeded`.
const RUN_NOT_SUCCEEDED: u8 = 3;

/// Runs the parsed command line against the gateway.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let printer = Printer { json: cli.json };
    let connect = Connect { tenant: cli.tenant.clone(), api_key: cli.api_key.clone(), tls_ca: cli.tls_ca.clone() };
    let mut client = Client::connect_with(&cli.addr, &connect).await?;
    match cli.command {
        Command::Submit(args) => submit(&mut client, printer, args).await,
        Command::Get { run_id, steps } => {
            let req = GetRunRequest { run_id, latest_steps: steps };
            let run = client.rpc.get_run(client.request(req)).await?.into_inner();
            printer.run(&run)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Steps { run_id, page_size, mut page_token, all } => loop {
            let req = ListStepsRequest { run_id: run_id.clone(), page_size, page_token };
            let page = client.rpc.list_steps(client.request(req)).await?.into_inner();
            printer.steps(&page, all)?;
            if !all || page.next_page_token.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            page_token = page.next_page_token;
        },
        Command::List(args) => list(&mut client, printer, args).await,
        Command::Watch { run_id, after_seq } => watch(&mut client, printer, run_id, after_seq).await,
        Command::Cancel { run_id, reason } => {
            let req = CancelRunRequest { run_id: run_id.clone(), reason };
            let resp = client.rpc.cancel_run(client.request(req)).await?.into_inner();
            printer.cancelled(&run_id, &resp)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { command } => dlq::run(&mut client, printer, command).await,
        Command::Tools { command: ToolsCommand::List } => {
            let tools = client.admin.list_tools(client.request(ListToolsRequest {})).await?.into_inner();
            printer.tools(&tools)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools { command: ToolsCommand::Reload } => {
            let reloaded = client.admin.reload_tools(client.request(ReloadToolsRequest {})).await?.into_inner();
            printer.tools_reloaded(&reloaded)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools { command } => {
            let (args, disabled, requires_approval) = match command {
                ToolsCommand::Disable(a) => (a, Some(true), None),
                ToolsCommand::Enable(a) => (a, Some(false), None),
                ToolsCommand::RequireApproval(a) => (a, None, Some(true)),
                ToolsCommand::NoApproval(a) => (a, None, Some(false)),
                ToolsCommand::List | ToolsCommand::Reload => unreachable!("handled above"),
            };
            let req = SetToolSwitchRequest {
                tool: args.tool,
                disabled,
                requires_approval,
                actor: cli.actor,
                reason: args.reason,
            };
            gates::tool_switch(&mut client, printer, req).await
        }
        Command::Approvals { command } => gates::approvals(&mut client, printer, &cli.actor, command).await,
        Command::Reconcile(args) => gates::reconcile(&mut client, printer, &cli.actor, args).await,
        Command::Lanes { command } => crate::lanes::run(&mut client, printer, &cli.actor, command).await,
        Command::Tenants { command } => gates::tenants(&mut client, printer, &cli.actor, command).await,
        Command::Limits { command } => gates::limits(&mut client, printer, &cli.actor, command).await,
        Command::Keys { command } => crate::keys::run(&mut client, printer, cli.tenant.as_deref(), command).await,
        Command::Switches { audit_limit } => gates::switches(&mut client, printer, audit_limit).await,
        Command::Readiness { prometheus } => crate::readiness::run(&mut client, printer, prometheus).await,
    }
}

async fn submit(client: &mut Client, printer: Printer, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    if args.model.is_none() && (args.system.is_some() || args.temperature.is_some()) {
        anyhow::bail!("--system and --temperature are settings of a model run (--model NAME)");
    }
    let spec = spec_of(&args);
    let req = SubmitRunRequest { spec: Some(spec), idempotency_key: args.idempotency_key };
    let resp = client.rpc.submit_run(client.request(req)).await?.into_inner();
    printer.submitted(&resp)?;
    if args.watch {
        return watch(client, printer, resp.run_id, 0).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The RunSpec a `submit` command line describes: a `script` planner with the steps in order,
/// or a model or agent with the named tools.
fn spec_of(args: &SubmitArgs) -> RunSpec {
    let budget = Budget {
        max_steps: args.max_steps,
        max_wall_clock_ms: args.deadline_ms,
        max_tokens: args.max_tokens,
        max_cost_micros: args.max_cost_micros,
        max_tool_calls: args.max_tool_calls,
        max_rejections: args.max_rejections,
    };
    let kind = match (&args.model, &args.agent) {
        (Some(endpoint), _) => planner::Kind::Model(ModelPlanner {
            endpoint: endpoint.clone(),
            system_prompt: args.system.clone().unwrap_or_default(),
            temperature: args.temperature,
        }),
        (None, Some(agent)) => planner::Kind::Grpc(AgentPlanner { agent: agent.clone() }),
        (None, None) => planner::Kind::Script(ScriptPlan { steps: args.steps.clone() }),
    };
    RunSpec {
        goal: args.goal.clone(),
        planner: Some(Planner { kind: Some(kind) }),
        allowed_tools: args.tools.clone(),
        autonomy: args.autonomy.map_or(0, |a| a as i32),
        budget: (budget != Budget::default()).then_some(budget),
        lane: args.lane.clone(),
        ..RunSpec::default()
    }
}

async fn list(client: &mut Client, printer: Printer, args: ListArgs) -> anyhow::Result<ExitCode> {
    let req = ListRunsRequest {
        status: args.status.unwrap_or(RunStatus::Unspecified) as i32,
        page_size: args.page_size,
        page_token: args.page_token,
    };
    let page = client.rpc.list_runs(client.request(req)).await?.into_inner();
    printer.run_list(&page)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints events until the stream ends; the exit status says whether the run succeeded.
async fn watch(client: &mut Client, printer: Printer, run_id: String, after_seq: u64) -> anyhow::Result<ExitCode> {
    let req = WatchRunRequest { run_id: run_id.clone(), after_seq };
    let mut stream = client.rpc.watch_run(client.request(req)).await?.into_inner();
    let mut last_seq = after_seq;
    let mut finished = None;
    loop {
        let event = match stream.message().await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(status) => {
                eprintln!("watch interrupted; resume with: batonctl watch {run_id} --after-seq {last_seq}");
                return Err(status.into());
            }
        };
        printer.event(&event)?;
        last_seq = last_seq.max(event.seq);
        // The last event decides: a requeued run goes on after an earlier RUN_FINISHED.
        finished = (event.kind() == EventKind::RunFinished).then(|| event.status());
    }
    Ok(match finished {
        Some(RunStatus::Succeeded) | None => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(RUN_NOT_SUCCEEDED),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn submit_args(argv: &[&str]) -> SubmitArgs {
        let cli = Cli::try_parse_from(argv).expect("parses");
        match cli.command {
            Command::Submit(args) => args,
            other => panic!("not submit: {other:?}"),
        }
    }

    #[test]
    fn spec_without_limits_leaves_budget_to_the_gateway() {
        let spec = spec_of(&submit_args(&["batonctl", "submit", "--step", "echo"]));
        assert!(spec.budget.is_none());
        assert_eq!(spec.lane, "");
        let Some(planner::Kind::Script(script)) = spec.planner.and_then(|p| p.kind) else { panic!("no script") };
        assert_eq!(script.steps.len(), 1);
    }

    #[test]
    fn spec_carries_limits_goal_and_lane() {
        let argv = ["batonctl", "submit", "--step", "echo", "--goal", "g", "--max-steps", "5", "--deadline-ms", "900"];
        let spec = spec_of(&submit_args(&[&argv[..], &["--lane", "main"]].concat()));
        let budget = spec.budget.expect("budget");
        assert_eq!((budget.max_steps, budget.max_wall_clock_ms), (5, 900));
        assert_eq!((spec.goal.as_str(), spec.lane.as_str()), ("g", "main"));
    }
}
