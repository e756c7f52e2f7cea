//! The human gates: `approvals list|approve|deny` and `reconcile`, with the text and JSON
//! forms of their answers (operator switches are in `switches.rs`). `approve` shows the exact
//! action and its hash before it approves, and sends that hash: if the run's call changed
//! meanwhile, the gateway refuses and nothing happens.

use std::process::ExitCode;

use baton_proto::v1::{
    ApprovalDecision, GetRunRequest, ListApprovalsRequest, ReconcileRunRequest, Reconciliation, ResolveApprovalRequest,
    Run,
};
use serde_json::json;

use crate::cli::{ApprovalsCommand, ReconcileArgs, ResolveArgs};
use crate::format::{one_line, status_name};
use crate::human::approval_text;
use crate::json::{approval, tool_call};
use crate::output::Printer;
use batonctl::client::Client;

/// `approvals …`
pub async fn approvals(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    command: ApprovalsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ApprovalsCommand::List { limit, mut page_token, all } => loop {
            let req = ListApprovalsRequest { limit, page_token };
            let resp = client.rpc.list_approvals(client.request(req)).await?.into_inner();
            for p in &resp.approvals {
                let call = p.call.clone().unwrap_or_default();
                let json = || {
                    let a = p.approval.as_ref().map(approval);
                    json!({ "run_id": p.run_id, "step": p.step, "call": tool_call(&call), "approval": a, "goal": p.goal })
                };
                let text = || {
                    let a = p.approval.as_ref().map(approval_text).unwrap_or_default();
                    format!("{} step={} tool={} args={} {a}", p.run_id, p.step, call.tool, one_line(&call.args_json))
                };
                printer.emit(json, text)?;
            }
            if resp.next_page_token.is_empty() {
                break;
            }
            if !all {
                let token = resp.next_page_token;
                printer.emit(|| json!({ "next_page_token": &token }), || format!("next_page_token={token}"))?;
                break;
            }
            page_token = resp.next_page_token;
        },
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
    let json = || {
        let a = resp.approval.as_ref().map(approval);
        json!({ "run_id": args.run_id, "decision": word, "status": status_name(resp.status), "approval": a })
    };
    printer.emit(json, || format!("{word} {} status={}", args.run_id, status_name(resp.status)))?;
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
    printer.emit(
        || json!({ "run_id": args.run_id, "decision": word, "status": status_name(resp.status) }),
        || format!("reconciled {} {word} status={}", args.run_id, status_name(resp.status)),
    )?;
    Ok(ExitCode::SUCCESS)
}
