//! The `tools` subcommands over AdminService: `list` and `reload` with the text and JSON forms
//! of their answers, and the tool switches (`disable`, `enable`, `require-approval`,
//! `no-approval`), printed as switch changes.

use std::fmt::Write as _;
use std::process::ExitCode;

use baton_proto::v1::{
    ListToolsRequest, ListToolsResponse, ReloadToolsRequest, ReloadToolsResponse, SetToolSwitchRequest, ToolInfo,
};
use serde_json::{json, Value};

use crate::cli::ToolsCommand;
use crate::format::{one_line, timestamp};
use crate::output::Printer;
use batonctl::client::Client;

/// Runs one `tools` subcommand; `actor` is who changes a switch.
pub async fn run(
    client: &mut Client,
    printer: Printer,
    actor: &str,
    command: ToolsCommand,
) -> anyhow::Result<ExitCode> {
    let (args, disabled, requires_approval) = match command {
        ToolsCommand::List => {
            let tools = client.admin.list_tools(client.request(ListToolsRequest {})).await?.into_inner();
            printer.emit(|| json_list(&tools), || text_list(&tools))?;
            return Ok(ExitCode::SUCCESS);
        }
        ToolsCommand::Reload => {
            let reloaded = client.admin.reload_tools(client.request(ReloadToolsRequest {})).await?.into_inner();
            printer.emit(|| json_reloaded(&reloaded), || text_reloaded(&reloaded))?;
            return Ok(ExitCode::SUCCESS);
        }
        ToolsCommand::Disable(a) => (a, Some(true), None),
        ToolsCommand::Enable(a) => (a, Some(false), None),
        ToolsCommand::RequireApproval(a) => (a, None, Some(true)),
        ToolsCommand::NoApproval(a) => (a, None, Some(false)),
    };
    let req = SetToolSwitchRequest {
        tool: args.tool,
        disabled,
        requires_approval,
        actor: actor.to_string(),
        reason: args.reason,
    };
    let change = client.admin.set_tool_switch(client.request(req)).await?.into_inner();
    crate::switches::print_change(printer, &change)?;
    Ok(ExitCode::SUCCESS)
}

/// A header line about the manifest, then one line per tool with its schema.
pub fn text_list(resp: &ListToolsResponse) -> String {
    let mut out = String::new();
    let source = if resp.manifest_path.is_empty() { "built-ins only".to_string() } else { resp.manifest_path.clone() };
    let _ =
        writeln!(out, "manifest {source} version={} loaded={}", resp.manifest_version, timestamp(resp.loaded_at_ms));
    if !resp.last_error.is_empty() {
        let _ = writeln!(out, "last reload rejected: {}", one_line(&resp.last_error));
    }
    for t in &resp.tools {
        let _ = writeln!(out, "{}", text_line(t));
    }
    out.trim_end().to_string()
}

/// `<name> kind=http side_effect=read idempotent=true target=POST http://… schema={…}  # description`
pub fn text_line(t: &ToolInfo) -> String {
    let mut line = format!("{} kind={} side_effect={} idempotent={}", t.name, t.kind, t.side_effect, t.idempotent);
    if !t.target.is_empty() {
        let _ = write!(line, " target={}", t.target.replace(' ', "_"));
    }
    if t.disabled {
        line.push_str(" DISABLED");
    }
    if t.requires_approval {
        line.push_str(" requires_approval");
    }
    if let Some(b) = &t.breaker {
        let _ = write!(line, " breaker={}", b.state);
        if b.failures > 0 {
            let _ = write!(line, " failures={}", b.failures);
        }
        if b.state != "closed" && b.open_until_ms > 0 {
            let _ = write!(line, " until={}", timestamp(b.open_until_ms));
        }
    }
    let _ = write!(line, " schema={}  # {}", t.args_schema_json, one_line(&t.description));
    line
}

/// `{"manifest_path", "manifest_version", "loaded_at_ms", "last_error", "tools": [...]}`
pub fn json_list(resp: &ListToolsResponse) -> Value {
    json!({
        "manifest_path": resp.manifest_path,
        "manifest_version": resp.manifest_version,
        "loaded_at_ms": resp.loaded_at_ms,
        "last_error": resp.last_error,
        "tools": resp.tools.iter().map(|t| json!({
            "name": t.name,
            "description": t.description,
            "kind": t.kind,
            "side_effect": t.side_effect,
            "idempotent": t.idempotent,
            "target": t.target,
            "disabled": t.disabled,
            "requires_approval": t.requires_approval,
            "breaker": t.breaker.as_ref().map(|b| json!({
                "state": b.state, "failures": b.failures, "open_until_ms": b.open_until_ms,
            })),
            "args_schema": serde_json::from_str::<Value>(&t.args_schema_json).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
    })
}

/// `reloaded version=<v> tools=<n>` or `unchanged version=<v> tools=<n>`.
pub fn text_reloaded(resp: &ReloadToolsResponse) -> String {
    let what = if resp.changed { "reloaded" } else { "unchanged" };
    format!("{what} version={} tools={}", resp.manifest_version, resp.tools)
}

/// `{"changed", "manifest_version", "tools"}`
pub fn json_reloaded(resp: &ReloadToolsResponse) -> Value {
    json!({ "changed": resp.changed, "manifest_version": resp.manifest_version, "tools": resp.tools })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_is_one_line() {
        let t = ToolInfo {
            name: "lookup".into(),
            description: "Look\nup".into(),
            args_schema_json: r#"{"type":"object"}"#.into(),
            kind: "http".into(),
            side_effect: "read".into(),
            idempotent: true,
            target: "POST http://x/y".into(),
            ..Default::default()
        };
        assert_eq!(
            text_line(&t),
            r#"lookup kind=http side_effect=read idempotent=true target=POST_http://x/y schema={"type":"object"}  # Look\nup"#
        );
    }
}
