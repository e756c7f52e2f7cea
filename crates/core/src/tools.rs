//! Built-in tools the runtime ships (`echo`, `sleep`) and the argument rules the gateway checks at the edge.

use serde_json::{Map, Value};

/// Longest a `sleep` step may ask for; longer waits belong to timers, not to a held lease.
pub const MAX_SLEEP_MS: u64 = 10 * 60 * 1000;

/// Names of the tools every worker has.
pub const BUILTIN_TOOLS: [&str; 2] = ["echo", "sleep"];

/// Why a tool call's arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The tool is not known to this fleet.
    #[error("unknown tool {0:?} (known: {known})", known = BUILTIN_TOOLS.join(", "))]
    UnknownTool(String),
    /// The arguments are not a JSON object.
    #[error("args must be a JSON object: {0}")]
    NotAnObject(String),
    /// A field is missing or has the wrong type or range.
    #[error("{0}")]
    Invalid(String),
}

/// Parses `args_json` (empty means `{}`) into a JSON object.
pub fn parse_args(args_json: &str) -> Result<Map<String, Value>, ArgsError> {
    if args_json.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(args_json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ArgsError::NotAnObject(format!("got {}", kind(&other)))),
        Err(e) => Err(ArgsError::NotAnObject(e.to_string())),
    }
}

/// Checks a call to a built-in tool: the tool exists and its arguments fit its schema.
pub fn validate_call(tool: &str, args_json: &str) -> Result<(), ArgsError> {
    let args = parse_args(args_json)?;
    match tool {
        "echo" => Ok(()),
        "sleep" => sleep_ms(&args).map(|_| ()),
        other => Err(ArgsError::UnknownTool(other.to_string())),
    }
}

/// The `ms` argument of `sleep`: a whole number of milliseconds up to [`MAX_SLEEP_MS`].
pub fn sleep_ms(args: &Map<String, Value>) -> Result<u64, ArgsError> {
    let ms = args
        .get("ms")
        .ok_or_else(|| ArgsError::Invalid("sleep needs \"ms\" (milliseconds)".into()))?;
    let ms = ms
        .as_u64()
        .ok_or_else(|| ArgsError::Invalid(format!("sleep \"ms\" must be a non-negative integer, got {ms}")))?;
    if ms > MAX_SLEEP_MS {
        return Err(ArgsError::Invalid(format!("sleep \"ms\" must be at most {MAX_SLEEP_MS}, got {ms}")));
    }
    Ok(ms)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_takes_any_object() {
        assert_eq!(validate_call("echo", r#"{"a":[1,2]}"#), Ok(()));
        assert_eq!(validate_call("echo", ""), Ok(()));
    }

    #[test]
    fn args_must_be_an_object() {
        let err = validate_call("echo", "[1]").unwrap_err();
        assert_eq!(err, ArgsError::NotAnObject("got an array".into()));
        assert!(matches!(validate_call("echo", "{"), Err(ArgsError::NotAnObject(_))));
    }

    #[test]
    fn sleep_checks_ms() {
        assert_eq!(validate_call("sleep", r#"{"ms":5}"#), Ok(()));
        assert!(validate_call("sleep", "{}").unwrap_err().to_string().contains("needs \"ms\""));
        assert!(validate_call("sleep", r#"{"ms":-1}"#).is_err());
        assert!(validate_call("sleep", r#"{"ms":600001}"#).is_err());
    }

    #[test]
    fn unknown_tool_is_named() {
        let err = validate_call("rm_rf", "{}").unwrap_err();
        assert!(err.to_string().contains("\"rm_rf\""), "{err}");
    }
}
