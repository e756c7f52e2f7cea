//! The human gates and operator switches: `approvals list|approve|deny`, `reconcile`,
//! `tools disable|enable|require-approval|no-approval`, `tenants cap`, `limits set` and
//! `switches`, with the text and JSON forms of their answers (lanes: [`crate::lanes`]).
//! `approve` shows the exact action and its hash before it approves, and sends that hash: if
//! the run's call changed meanwhile, the gateway refuses and nothing happens.

use std::fmt::Write as _;
use std::process::ExitCode;

use baton_proto::v1::{
    ApprovalDecision, GetRunRequest, ListApprovalsRequest, ListSwitchesRequest, ReconcileRunRequest, Reconciliation,
    ResolveApprovalRequest, Run, SetLimitRequest, SetTenantCapRequest, SetToolSwitchRequest, SwitchChange,
};
use serde_json::json;

use crate::cli::{ApprovalsCommand, LimitsCommand, ReconcileArgs, ResolveArgs, TenantsCommand};
use crate::human::approval_text;
use crate::json::{approval, tool_call};
use crate::output::{one_line, status_name, timestamp, Printer};
use batonctl::client::Client;

/// `approvals …`
pub async fn approvals(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    command: ApprovalsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ApprovalsCommand::List { limit } => {
            let resp = client.rpc.list_approvals(client.request(ListApprovalsRequest { limit })).await?.into_inner();
            for p in &resp.approvals {
                let call = p.call.clone().unwrap_or_default();
                if printer.json {
                    let a = p.approval.as_ref().map(approval);
                    let line = json!({ "run_id": p.run_id, "step": p.step, "call": tool_call(&call), "approval": a, "goal": p.goal });
                    println!("{line}");
                } else {
                    let a = p.approval.as_ref().map(approval_text).unwrap_or_default();
                    println!("{} step={} tool={} args={} {a}", p.run_id, p.step, call.tool, one_line(&call.args_json));
                }
            }
        }
        ApprovalsCommand::Approve(args) => resolve(client, printer, actor, args, ApprovalDecision::Approve).await?,
        ApprovalsCommand::Deny(args) => resolve(client, printer, actor, args, ApprovalDecision::Deny).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn current(client: &mut Client, run_id: &str) -> anyhow::Result<Run> {
    let req = GetRunRequest { run_id: run_id.to_string(), latest_steps: 1 };
    Ok(client.rpc.get_run(client.request(req)).await?.into_inner())
}

async fn resolve(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    args: ResolveArgs,
    decision: ApprovalDecision,
) -> anyhow::Result<()> {
    let run = current(client, &args.run_id).await?;
    let pending = run.pending.clone().unwrap_or_default();
    let Some(shown) = pending.approval.clone().filter(|_| run.wait_reason == "approval") else {
        anyhow::bail!("run {} is not waiting for an approval (status {})", args.run_id, status_name(run.status));
    };
    let call = pending.call.unwrap_or_default();
    // The action first: a person approves what they saw, and the hash makes sure of it.
    eprintln!("action: step={} tool={} args={}", run.steps_completed, call.tool, one_line(&call.args_json));
    eprintln!("approval: {}", approval_text(&shown));
    let req = ResolveApprovalRequest {
        run_id: args.run_id.clone(),
        approval_id: args.approval.unwrap_or(shown.approval_id),
        action_hash: args.hash.unwrap_or(shown.action_hash),
        decision: decision as i32,
        actor: actor.to_string(),
        comment: args.comment,
    };
    let resp = client.rpc.resolve_approval(client.request(req)).await?.into_inner();
    let word = if decision == ApprovalDecision::Approve { "approved" } else { "denied" };
    if printer.json {
        let a = resp.approval.as_ref().map(approval);
        println!(
            "{}",
            json!({ "run_id": args.run_id, "decision": word, "status": status_name(resp.status), "approval": a })
        );
    } else {
        println!("{word} {} status={}", args.run_id, status_name(resp.status));
    }
    Ok(())
}

/// `reconcile RUN --done --output JSON | --not-done | --fail`
pub async fn reconcile(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    args: ReconcileArgs,
) -> anyhow::Result<ExitCode> {
    let (decision, output_json) = match (args.done, args.not_done, args.fail) {
        (true, false, false) => {
            let Some(output) = args.output else { anyhow::bail!("--done needs --output JSON: what the call returned") };
            (Reconciliation::Done, output)
        }
        (false, true, false) => (Reconciliation::NotDone, String::new()),
        (false, false, true) => (Reconciliation::Fail, String::new()),
        _ => anyhow::bail!("say exactly one of --done, --not-done, --fail"),
    };
    let step = match args.step {
        Some(step) => step,
        None => {
            let run = current(client, &args.run_id).await?;
            if run.wait_reason != "needs_reconciliation" {
                anyhow::bail!("run {} does not need reconciliation (status {})", args.run_id, status_name(run.status));
            }
            if let Some(call) = run.pending.as_ref().and_then(|p| p.call.as_ref()) {
                eprintln!("call: step={} tool={} args={}", run.steps_completed, call.tool, one_line(&call.args_json));
            }
            eprintln!("known: {}", one_line(&run.last_error));
            run.steps_completed
        }
    };
    let req = ReconcileRunRequest {
        run_id: args.run_id.clone(),
        step,
        decision: decision as i32,
        output_json,
        actor: actor.to_string(),
        comment: args.comment,
    };
    let resp = client.rpc.reconcile_run(client.request(req)).await?.into_inner();
    let word = decision.as_str_name().trim_start_matches("RECONCILIATION_").to_ascii_lowercase();
    if printer.json {
        println!("{}", json!({ "run_id": args.run_id, "decision": word, "status": status_name(resp.status) }));
    } else {
        println!("reconciled {} {word} status={}", args.run_id, status_name(resp.status));
    }
    Ok(ExitCode::SUCCESS)
}

/// `tools disable|enable|require-approval|no-approval TOOL`
pub async fn tool_switch(client: &mut Client, printer: Printer, req: SetToolSwitchRequest) -> anyhow::Result<ExitCode> {
    let change = client.admin.set_tool_switch(client.request(req)).await?.into_inner();
    print_change(printer, &change);
    Ok(ExitCode::SUCCESS)
}

/// `limits set LIMIT TARGET VALUE`
pub async fn limits(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    command: LimitsCommand,
) -> anyhow::Result<ExitCode> {
    let LimitsCommand::Set { limit, target, value, reason } = command;
    let req = SetLimitRequest { limit, target, value, actor: actor.to_string(), reason };
    let change = client.admin.set_limit(client.request(req)).await?.into_inner();
    print_change(printer, &change);
    Ok(ExitCode::SUCCESS)
}

/// `tenants cap TENANT N`
pub async fn tenants(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    command: TenantsCommand,
) -> anyhow::Result<ExitCode> {
    let TenantsCommand::Cap { tenant, max_active_runs, reason } = command;
    let req = SetTenantCapRequest { tenant, max_active_runs, actor: actor.to_string(), reason };
    let change = client.admin.set_tenant_cap(client.request(req)).await?.into_inner();
    print_change(printer, &change);
    Ok(ExitCode::SUCCESS)
}

/// `switches`: what is in force, then the latest changes.
pub async fn switches(client: &mut Client, printer: Printer, audit_limit: u32) -> anyhow::Result<ExitCode> {
    let resp = client.admin.list_switches(client.request(ListSwitchesRequest { audit_limit })).await?.into_inner();
    if printer.json {
        let list = |v: &[SwitchChange]| v.iter().map(change_json).collect::<Vec<_>>();
        println!("{}", json!({ "in_force": list(&resp.in_force), "audit": list(&resp.audit) }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("in force:{}", if resp.in_force.is_empty() { " none" } else { "" });
    for c in &resp.in_force {
        println!("  {}", change_line(c));
    }
    println!("latest changes:{}", if resp.audit.is_empty() { " none" } else { "" });
    for c in &resp.audit {
        println!("  {}", change_line(c));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_change(printer: Printer, c: &SwitchChange) {
    if printer.json {
        println!("{}", change_json(c));
    } else {
        println!("{}", change_line(c));
    }
}

/// `tool.disabled refund=true by alice at <time>: <reason>`
fn change_line(c: &SwitchChange) -> String {
    let mut line = format!("{} {}={} by {} at {}", c.switch, c.target, c.value, c.actor, timestamp(c.at_ms));
    let _ = write!(line, ": {}", one_line(&c.reason));
    line
}

fn change_json(c: &SwitchChange) -> serde_json::Value {
    json!({ "switch": c.switch, "target": c.target, "value": c.value, "actor": c.actor, "reason": c.reason, "at_ms": c.at_ms })
}
