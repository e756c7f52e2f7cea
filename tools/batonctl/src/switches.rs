//! Operator switches over AdminService: `tenants cap`, `limits set` and `switches` (what is in
//! force and the latest changes), and the one form every switch change is printed in (the tool
//! switches and the lane pauses use it too).

use std::fmt::Write as _;
use std::process::ExitCode;

use baton_proto::v1::{ListSwitchesRequest, SetLimitRequest, SetTenantCapRequest, SwitchChange};
use serde_json::{json, Value};

use crate::cli::{LimitsCommand, TenantsCommand};
use crate::format::{one_line, timestamp};
use crate::output::Printer;
use batonctl::client::Client;

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
    print_change(printer, &change)?;
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
    print_change(printer, &change)?;
    Ok(ExitCode::SUCCESS)
}

/// `switches`: what is in force, then the latest changes.
pub async fn list(client: &mut Client, printer: Printer, audit_limit: u32) -> anyhow::Result<ExitCode> {
    let resp = client.admin.list_switches(client.request(ListSwitchesRequest { audit_limit })).await?.into_inner();
    let json = || {
        let list = |v: &[SwitchChange]| v.iter().map(change_json).collect::<Vec<_>>();
        json!({ "in_force": list(&resp.in_force), "audit": list(&resp.audit) })
    };
    printer.emit(json, || text_list(&resp.in_force, &resp.audit))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints one switch change, as the gateway answered a change.
pub fn print_change(printer: Printer, change: &SwitchChange) -> std::io::Result<()> {
    printer.emit(|| change_json(change), || change_line(change))
}

/// `in force:` and `latest changes:`, each followed by one indented line per change (or `none`).
fn text_list(in_force: &[SwitchChange], audit: &[SwitchChange]) -> String {
    let mut out = String::new();
    for (title, changes) in [("in force:", in_force), ("latest changes:", audit)] {
        let _ = writeln!(out, "{title}{}", if changes.is_empty() { " none" } else { "" });
        for c in changes {
            let _ = writeln!(out, "  {}", change_line(c));
        }
    }
    out.trim_end().to_string()
}

/// `tool.disabled refund=true by alice at <time>: <reason>`
fn change_line(c: &SwitchChange) -> String {
    let mut line = format!("{} {}={} by {} at {}", c.switch, c.target, c.value, c.actor, timestamp(c.at_ms));
    let _ = write!(line, ": {}", one_line(&c.reason));
    line
}

fn change_json(c: &SwitchChange) -> Value {
    json!({ "switch": c.switch, "target": c.target, "value": c.value, "actor": c.actor, "reason": c.reason, "at_ms": c.at_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> SwitchChange {
        SwitchChange {
            switch: "tool.disabled".into(),
            target: "refund".into(),
            value: "true".into(),
            actor: "alice".into(),
            reason: "bank\noutage".into(),
            at_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn a_change_is_one_line_and_a_listing_names_both_parts() {
        assert_eq!(
            change_line(&change()),
            "tool.disabled refund=true by alice at 2023-11-14T22:13:20.123Z: bank\\noutage"
        );
        let text = text_list(&[change()], &[]);
        assert_eq!(text.lines().collect::<Vec<_>>()[0], "in force:");
        assert!(text.lines().nth(1).unwrap().starts_with("  tool.disabled refund=true"));
        assert_eq!(text.lines().last(), Some("latest changes: none"));
        assert_eq!(change_json(&change())["reason"], "bank\noutage");
    }
}
