//! Runs the parsed command line: connects, then hands each command group to its module; the run
//! commands (`submit`, `get`, `steps`, `list`, `watch`, `cancel`) are here.

use std::process::ExitCode;

use baton_proto::v1::{
    planner, AgentPlanner, Budget, CancelRunRequest, EventKind, GetRunRequest, ListRunsRequest, ListStepsRequest,
    ModelPlanner, Planner, RunSpec, RunStatus, ScriptPlan, SubmitRunRequest, WatchRunRequest,
};

use crate::cli::{CancelArgs, Cli, Command, GetArgs, ListArgs, StepsArgs, SubmitArgs, WatchArgs};
use crate::output::Printer;
use crate::{dlq, gates, human, json, keys, lanes, readiness, switches, tools};
use batonctl::client::{Client, Connect};

/// Exit status when a watched run ended in any status but `succeeded`.
const RUN_NOT_SUCCEEDED: u8 = 3;

/// Runs the parsed command line against the gateway.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let printer = Printer { json: cli.json };
    // For `keys`, --tenant names whose keys (a request field; `*` is every tenant), not the
    // tenant the call acts for: KeyService acts for the credential's scope.
    let header = if matches!(cli.command, Command::Keys { .. }) { None } else { cli.tenant.clone() };
    let connect = Connect { tenant: header, api_key: cli.api_key.clone(), tls_ca: cli.tls_ca.clone() };
    let mut client = Client::connect_with(&cli.addr, &connect).await?;
    let actor = cli.actor.as_str();
    match cli.command {
        Command::Submit(args) => submit(&mut client, printer, args).await,
        Command::Get(args) => get(&mut client, printer, args).await,
        Command::Steps(args) => steps(&mut client, printer, args).await,
        Command::List(args) => list(&mut client, printer, args).await,
        Command::Watch(WatchArgs { run_id, after_seq }) => watch(&mut client, printer, run_id, after_seq).await,
        Command::Cancel(args) => cancel(&mut client, printer, args).await,
        Command::Dlq { command } => dlq::run(&mut client, printer, command).await,
        Command::Tools { command } => tools::run(&mut client, printer, actor, command).await,
        Command::Approvals { command } => gates::approvals(&mut client, printer, actor, command).await,
        Command::Reconcile(args) => gates::reconcile(&mut client, printer, actor, args).await,
        Command::Lanes { command } => lanes::run(&mut client, printer, actor, command).await,
        Command::Tenants { command } => switches::tenants(&mut client, printer, actor, command).await,
        Command::Limits { command } => switches::limits(&mut client, printer, actor, command).await,
        Command::Keys { command } => keys::run(&mut client, printer, cli.tenant.as_deref(), command).await,
        Command::Switches { audit_limit } => switches::list(&mut client, printer, audit_limit).await,
        Command::Readiness { prometheus } => readiness::run(&mut client, printer, prometheus).await,
    }
}

async fn get(client: &mut Client, printer: Printer, GetArgs { run_id, steps }: GetArgs) -> anyhow::Result<ExitCode> {
    let req = GetRunRequest { run_id, latest_steps: steps };
    let run = client.rpc.get_run(client.request(req)).await?.into_inner();
    printer.emit(|| json::run(&run), || human::run(&run))?;
    Ok(ExitCode::SUCCESS)
}

/// One page of steps, or with `--all` every page (the page token line is then left out).
async fn steps(client: &mut Client, printer: Printer, args: StepsArgs) -> anyhow::Result<ExitCode> {
    let StepsArgs { run_id, page_size, mut page_token, all } = args;
    loop {
        let req = ListStepsRequest { run_id: run_id.clone(), page_size, page_token };
        let page = client.rpc.list_steps(client.request(req)).await?.into_inner();
        printer.emit(|| json::step_page(&page), || human::step_page(&page, all))?;
        if !all || page.next_page_token.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        page_token = page.next_page_token;
    }
}

async fn cancel(client: &mut Client, printer: Printer, args: CancelArgs) -> anyhow::Result<ExitCode> {
    let CancelArgs { run_id, reason } = args;
    let req = CancelRunRequest { run_id: run_id.clone(), reason };
    let resp = client.rpc.cancel_run(client.request(req)).await?.into_inner();
    printer.emit(|| json::cancelled(&run_id, &resp), || human::cancelled(&run_id, &resp))?;
    Ok(ExitCode::SUCCESS)
}

async fn submit(client: &mut Client, printer: Printer, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    if args.model.is_none() && (args.system.is_some() || args.temperature.is_some()) {
        anyhow::bail!("--system and --temperature are settings of a model run (--model NAME)");
    }
    let spec = spec_of(&args);
    let req = SubmitRunRequest { spec: Some(spec), idempotency_key: args.idempotency_key };
    let resp = client.rpc.submit_run(client.request(req)).await?.into_inner();
    printer.emit(|| json::submitted(&resp), || human::submitted(&resp))?;
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
    printer.emit(|| json::run_list(&page), || human::run_list(&page))?;
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
        printer.emit(|| json::event(&event), || human::event(&event))?;
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
