//! Pure parsing of command-line values: `--step TOOL[:JSON_ARGS]`, autonomy levels, run status
//! names and key roles.

use baton_core::status;
use baton_proto::v1::{AutonomyLevel, Role, RunStatus, ToolCall};

/// Parses one `--step` value: `TOOL` (arguments `{}`) or `TOOL:JSON_OBJECT`.
///
/// The tool name ends at the first `:`; everything after it must be a JSON object and is sent
/// as written (trimmed), so the same command line always yields the same spec fingerprint.
pub fn parse_step(value: &str) -> Result<ToolCall, String> {
    let (tool, args) = match value.split_once(':') {
        Some((tool, args)) => (tool.trim(), args.trim()),
        None => (value.trim(), ""),
    };
    if tool.is_empty() {
        return Err(format!("{value:?}: missing tool name (expected TOOL or TOOL:JSON_ARGS)"));
    }
    if tool.chars().any(char::is_whitespace) {
        return Err(format!("{value:?}: tool name {tool:?} contains whitespace"));
    }
    if args.is_empty() {
        return Ok(ToolCall { tool: tool.to_string(), args_json: "{}".to_string() });
    }
    match serde_json::from_str::<serde_json::Value>(args) {
        Ok(serde_json::Value::Object(_)) => Ok(ToolCall { tool: tool.to_string(), args_json: args.to_string() }),
        Ok(_) => Err(format!("{value:?}: arguments of {tool:?} must be a JSON object, like {{\"msg\":\"hi\"}}")),
        Err(e) => Err(format!("{value:?}: arguments of {tool:?} are not valid JSON: {e}")),
    }
}

/// Parses an autonomy level: `advisory`, `drafts_for_review`, `executes_after_approval` or
/// `bounded_autonomous` (or the proto enum name).
pub fn parse_autonomy(value: &str) -> Result<AutonomyLevel, String> {
    let upper = value.trim().to_ascii_uppercase();
    let name = if upper.starts_with("AUTONOMY_LEVEL_") { upper } else { format!("AUTONOMY_LEVEL_{upper}") };
    match AutonomyLevel::from_str_name(&name) {
        Some(a) if a != AutonomyLevel::Unspecified => Ok(a),
        _ => Err(format!(
            "{value:?} is not an autonomy level (one of: advisory, drafts_for_review, executes_after_approval, bounded_autonomous)"
        )),
    }
}

/// Parses a run status name as printed by batonctl (`succeeded`, `timed_out`, …).
///
/// Also accepts the proto enum name (`RUN_STATUS_SUCCEEDED`) and any letter case.
pub fn parse_status(value: &str) -> Result<RunStatus, String> {
    let lower = value.trim().to_ascii_lowercase();
    let short = lower.strip_prefix("run_status_").unwrap_or(&lower);
    match status::parse(short) {
        Some(s) if s != RunStatus::Unspecified => Ok(s),
        _ => {
            let names: Vec<&str> = status::ALL[1..].iter().map(|s| status::name(*s)).collect();
            Err(format!("{value:?} is not a run status (one of: {})", names.join(", ")))
        }
    }
}

/// Parses a role name: `submitter`, `operator` or `admin` (or the proto enum name).
pub fn parse_role(value: &str) -> Result<Role, String> {
    let upper = value.trim().to_ascii_uppercase();
    let name = if upper.starts_with("ROLE_") { upper } else { format!("ROLE_{upper}") };
    match Role::from_str_name(&name) {
        Some(r) if r != Role::Unspecified => Ok(r),
        _ => Err(format!("{value:?} is not a role (one of: submitter, operator, admin)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_tool_means_empty_args() {
        let call = parse_step("echo").expect("valid");
        assert_eq!(call.tool, "echo");
        assert_eq!(call.args_json, "{}");
        assert_eq!(parse_step("echo:").expect("valid").args_json, "{}");
    }

    #[test]
    fn args_are_kept_as_written() {
        let call = parse_step(r#"sleep:{"ms": 200}"#).expect("valid");
        assert_eq!(call.tool, "sleep");
        assert_eq!(call.args_json, r#"{"ms": 200}"#);
    }

    #[test]
    fn only_the_first_colon_splits() {
        let call = parse_step(r#"echo:{"url":"http://x:1"}"#).expect("valid");
        assert_eq!(call.tool, "echo");
        assert_eq!(call.args_json, r#"{"url":"http://x:1"}"#);
    }

    #[test]
    fn invalid_json_is_a_clear_error() {
        let e = parse_step("echo:{msg:hi}").expect_err("invalid");
        assert!(e.contains("not valid JSON"), "{e}");
        assert!(e.contains("\"echo\""), "{e}");
    }

    #[test]
    fn non_object_args_are_refused() {
        let e = parse_step("echo:[1,2]").expect_err("array");
        assert!(e.contains("must be a JSON object"), "{e}");
    }

    #[test]
    fn missing_tool_is_refused() {
        assert!(parse_step(":{}").is_err());
        assert!(parse_step("").is_err());
        assert!(parse_step("my tool").is_err());
    }

    #[test]
    fn roles_parse_by_name() {
        assert_eq!(parse_role("operator"), Ok(Role::Operator));
        assert_eq!(parse_role("ROLE_ADMIN"), Ok(Role::Admin));
        assert!(parse_role("unspecified").is_err());
        assert!(parse_role("root").unwrap_err().contains("submitter, operator, admin"));
    }

    #[test]
    fn status_names() {
        assert_eq!(parse_status("succeeded"), Ok(RunStatus::Succeeded));
        assert_eq!(parse_status("TIMED_OUT"), Ok(RunStatus::TimedOut));
        assert_eq!(parse_status("RUN_STATUS_QUEUED"), Ok(RunStatus::Queued));
        let e = parse_status("done").expect_err("unknown");
        assert!(e.contains("dead_lettered"), "{e}");
        assert!(parse_status("unspecified").is_err());
    }
}
