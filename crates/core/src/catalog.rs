//! The tool catalog: every tool a run may name — the built-ins and those of the tool manifest —
//! with its argument schema (compiled once), side-effect class, idempotency and adapter
//! settings. Arguments are checked against the schema here, at the edge and before every call.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::tools::{parse_args, ArgsError, MAX_SLEEP_MS, MAX_WAIT_MS};
use crate::v1::ToolInfo;

/// What calling a tool does to the world. Autonomy levels keep `write` and `external` tools
/// from running without a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SideEffect {
    /// Computes only.
    None,
    /// Reads outside state.
    Read,
    /// Changes state Baton's operators own.
    Write,
    /// Acts on the outside world (payments, messages, third-party systems).
    External,
}

impl SideEffect {
    /// Every class, in order.
    pub const ALL: [SideEffect; 4] = [SideEffect::None, SideEffect::Read, SideEffect::Write, SideEffect::External];

    /// The manifest's name of the class.
    pub fn name(self) -> &'static str {
        match self {
            SideEffect::None => "none",
            SideEffect::Read => "read",
            SideEffect::Write => "write",
            SideEffect::External => "external",
        }
    }

    /// Inverse of [`SideEffect::name`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// True for classes an autonomy level may keep from running (`write`, `external`).
    pub fn has_effect(self) -> bool {
        matches!(self, SideEffect::Write | SideEffect::External)
    }
}

/// A header value of an HTTP tool: literal, or read from the worker's environment at call time
/// (secrets never live in the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Sent as is.
    Literal(String),
    /// `prefix` + the value of environment variable `var`.
    Env {
        /// Environment variable holding the secret.
        var: String,
        /// Text before the value, e.g. `Bearer `.
        prefix: String,
    },
}

/// How an HTTP tool is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAdapter {
    /// Endpoint URL (`http://` or `https://`).
    pub url: String,
    /// `POST` (arguments as the JSON body), `PUT`, `PATCH`, or `GET`/`DELETE` (as query parameters).
    pub method: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, HeaderValue)>,
    /// Longest one call may take.
    pub timeout_ms: u64,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
}

/// How a gRPC tool (`baton.v1.ToolService/Invoke`) is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcAdapter {
    /// Endpoint URL, e.g. `http://tools.internal:50061`.
    pub endpoint: String,
    /// Longest one call may take.
    pub timeout_ms: u64,
    /// Largest response accepted.
    pub max_response_bytes: usize,
}

/// Where a tool's calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adapter {
    /// Shipped with the worker.
    Builtin,
    /// An HTTP endpoint.
    Http(HttpAdapter),
    /// A `baton.v1.ToolService`.
    Grpc(GrpcAdapter),
}

impl Adapter {
    /// `builtin`, `http` or `grpc`.
    pub fn kind(&self) -> &'static str {
        match self {
            Adapter::Builtin => "builtin",
            Adapter::Http(_) => "http",
            Adapter::Grpc(_) => "grpc",
        }
    }

    /// The longest one call may take (`timeout_ms` of the manifest); none for built-ins.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            Adapter::Builtin => None,
            Adapter::Http(h) => Some(h.timeout_ms),
            Adapter::Grpc(g) => Some(g.timeout_ms),
        }
    }

    /// Where calls go (no secrets): the URL or endpoint, empty for built-ins.
    pub fn target(&self) -> String {
        match self {
            Adapter::Builtin => String::new(),
            Adapter::Http(h) => format!("{} {}", h.method, h.url),
            Adapter::Grpc(g) => g.endpoint.clone(),
        }
    }
}

/// A tool as declared: by the built-ins or by one manifest entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    /// Unique name, `[A-Za-z0-9_-]`, at most 64 characters (what models accept).
    pub name: String,
    /// What it does, shown to planners.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub args_schema: Value,
    /// What a call does to the world.
    pub side_effect: SideEffect,
    /// Whether a second call with the same idempotency key is safe.
    pub idempotent: bool,
    /// Every call waits for a person's approval.
    pub requires_approval: bool,
    /// A planner may make the same call (same arguments) more than once in a run. Off by
    /// default: a `write` or `external` call repeated verbatim is rejected as `duplicate_call`.
    pub allow_repeats: bool,
    /// Where calls go.
    pub adapter: Adapter,
}

/// A declared tool with its compiled schema.
pub struct CatalogTool {
    /// The declaration.
    pub def: ToolDef,
    validator: jsonschema::Validator,
}

impl fmt::Debug for CatalogTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.def.fmt(f)
    }
}

/// A tool declaration that cannot be used: which tool, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tool {tool:?}: {field}: {message}")]
pub struct CatalogError {
    /// The tool's name.
    pub tool: String,
    /// The offending field, e.g. `args_schema`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Every tool of the fleet, by name. Built from the built-ins plus a manifest; immutable (a
/// reload builds a new one).
#[derive(Debug)]
pub struct Catalog {
    tools: BTreeMap<String, CatalogTool>,
    version: String,
}

/// Longest tool name (the limit OpenAI-compatible servers put on function names).
pub const MAX_TOOL_NAME: usize = 64;

impl Catalog {
    /// The built-in tools only.
    pub fn builtins() -> Self {
        Self::new(Vec::new(), "builtin").unwrap_or_else(|e| panic!("built-in tool schemas must compile: {e}"))
    }

    /// The built-ins plus `defs` (which may not reuse a built-in's name). `version` names the
    /// source, e.g. the manifest's hash.
    pub fn new(defs: Vec<ToolDef>, version: &str) -> Result<Self, CatalogError> {
        let mut tools = BTreeMap::new();
        for def in builtin_defs() {
            tools.insert(def.name.clone(), compile(def)?);
        }
        for def in defs {
            check_name(&def.name)?;
            if tools.contains_key(&def.name) {
                return Err(CatalogError {
                    tool: def.name.clone(),
                    field: "name".into(),
                    message: "is a built-in tool or declared twice".into(),
                });
            }
            tools.insert(def.name.clone(), compile(def)?);
        }
        Ok(Self { tools, version: version.to_string() })
    }

    /// Which manifest this catalog came from.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&CatalogTool> {
        self.tools.get(name)
    }

    /// Every tool, by name.
    pub fn tools(&self) -> impl Iterator<Item = &CatalogTool> {
        self.tools.values()
    }

    /// Names of every tool, comma-separated, for error messages.
    pub fn known(&self) -> String {
        self.tools.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Checks a call: the tool exists and `args_json` is an object valid against its schema.
    /// Returns the parsed arguments.
    pub fn check_args(&self, tool: &str, args_json: &str) -> Result<Map<String, Value>, ArgsError> {
        let entry =
            self.get(tool).ok_or_else(|| ArgsError::UnknownTool { name: tool.to_string(), known: self.known() })?;
        let args = parse_args(args_json)?;
        entry.check(&args)?;
        Ok(args)
    }

    /// The API view of tool `name`.
    pub fn info(&self, name: &str) -> Option<ToolInfo> {
        self.get(name).map(CatalogTool::info)
    }
}

impl CatalogTool {
    /// Checks arguments against the schema; the error names up to three failing paths.
    pub fn check(&self, args: &Map<String, Value>) -> Result<(), ArgsError> {
        let instance = Value::Object(args.clone());
        let problems: Vec<String> = self
            .validator
            .iter_errors(&instance)
            .take(3)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ArgsError::Invalid(format!(
                "arguments do not match the schema of {}: {}",
                self.def.name,
                problems.join("; ")
            )))
        }
    }

    /// The API view.
    pub fn info(&self) -> ToolInfo {
        ToolInfo {
            name: self.def.name.clone(),
            description: self.def.description.clone(),
            args_schema_json: self.def.args_schema.to_string(),
            kind: self.def.adapter.kind().to_string(),
            side_effect: self.def.side_effect.name().to_string(),
            idempotent: self.def.idempotent,
            target: self.def.adapter.target(),
            requires_approval: self.def.requires_approval,
            ..Default::default()
        }
    }
}

impl ToolDef {
    /// A call whose outcome is uncertain must not be repeated blindly: an `external` side
    /// effect without idempotency-key support.
    pub fn uncertain_if_interrupted(&self) -> bool {
        self.side_effect == SideEffect::External && !self.idempotent
    }

    /// A planner's repeat of an executed call of this tool is rejected (`duplicate_call`): the
    /// tool has a side effect and its manifest entry does not set `allow_repeats`.
    pub fn refuses_repeats(&self) -> bool {
        self.side_effect.has_effect() && !self.allow_repeats
    }
}

/// A short stable hash of a manifest's text, used as its version.
pub fn version_of(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn check_name(name: &str) -> Result<(), CatalogError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        return Ok(());
    }
    Err(CatalogError {
        tool: name.to_string(),
        field: "name".into(),
        message: format!("must be 1..={MAX_TOOL_NAME} characters of [A-Za-z0-9_-]"),
    })
}

fn compile(def: ToolDef) -> Result<CatalogTool, CatalogError> {
    let err = |message: String| CatalogError { tool: def.name.clone(), field: "args_schema".into(), message };
    if def.args_schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(err("must be a JSON Schema with \"type\": \"object\" (tool arguments are an object)".into()));
    }
    let validator =
        jsonschema::validator_for(&def.args_schema).map_err(|e| err(format!("not a valid JSON Schema: {e}")))?;
    Ok(CatalogTool { def, validator })
}

fn builtin(name: &str, description: &str, schema: Value, side_effect: SideEffect, idempotent: bool) -> ToolDef {
    ToolDef {
        name: name.into(),
        description: description.into(),
        args_schema: schema,
        side_effect,
        idempotent,
        requires_approval: false,
        allow_repeats: false,
        adapter: Adapter::Builtin,
    }
}

/// The built-in tools with their schemas.
fn builtin_defs() -> Vec<ToolDef> {
    vec![
        builtin(
            "echo",
            "Returns its arguments and the idempotency key it was called with.",
            json!({"type": "object"}),
            SideEffect::None,
            true,
        ),
        builtin(
            "sleep",
            "Holds the step for `ms` milliseconds, then returns.",
            json!({
                "type": "object",
                "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": MAX_SLEEP_MS}},
                "required": ["ms"],
                "additionalProperties": false
            }),
            SideEffect::None,
            true,
        ),
        builtin(
            "wait",
            "Parks the run without holding a worker: for `ms` milliseconds or until `until_ms` (ms since epoch).",
            json!({
                "type": "object",
                "properties": {
                    "ms": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_MS},
                    "until_ms": {"type": "integer", "minimum": 0}
                },
                "oneOf": [{"required": ["ms"]}, {"required": ["until_ms"]}],
                "additionalProperties": false
            }),
            SideEffect::None,
            true,
        ),
        builtin(
            "flaky",
            "Fails retryably by a rule (first `fail_attempts` attempts, `fail_rate`, or until `fail_until_ms`), for drills.",
            json!({
                "type": "object",
                "properties": {
                    "fail_attempts": {"type": "integer", "minimum": 0, "maximum": 1000},
                    "fail_rate": {"type": "number", "minimum": 0, "maximum": 1},
                    "fail_until_ms": {"type": "integer"}
                },
                "oneOf": [
                    {"required": ["fail_attempts"]},
                    {"required": ["fail_rate"]},
                    {"required": ["fail_until_ms"]}
                ]
            }),
            SideEffect::None,
            true,
        ),
        builtin(
            "ledger",
            "Records the call in an audited ledger under its idempotency key (a real side effect).",
            json!({"type": "object"}),
            SideEffect::Write,
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_tool(name: &str, schema: Value) -> ToolDef {
        ToolDef {
            name: name.into(),
            description: "d".into(),
            args_schema: schema,
            side_effect: SideEffect::Read,
            idempotent: true,
            requires_approval: false,
            allow_repeats: false,
            adapter: Adapter::Http(HttpAdapter {
                url: "http://127.0.0.1:1/x".into(),
                method: "POST".into(),
                headers: Vec::new(),
                timeout_ms: 1000,
                max_response_bytes: 1024,
            }),
        }
    }

    #[test]
    fn builtins_check_their_arguments() {
        let c = Catalog::builtins();
        assert!(c.check_args("sleep", r#"{"ms":5}"#).is_ok());
        let e = c.check_args("sleep", r#"{"ms":"x"}"#).unwrap_err().to_string();
        assert!(e.contains("/ms") && e.contains("integer"), "{e}");
        assert!(c.check_args("sleep", "{}").unwrap_err().to_string().contains("\"ms\""));
        assert!(c.check_args("sleep", r#"{"ms":600001}"#).is_err());
        assert!(c.check_args("wait", r#"{"ms":1,"until_ms":2}"#).is_err());
        assert!(c.check_args("wait", r#"{"until_ms":2}"#).is_ok());
        assert!(c.check_args("flaky", r#"{"fail_rate":0.5,"fail_attempts":1}"#).is_err());
        assert!(c.check_args("flaky", r#"{"fail_rate":0.5}"#).is_ok());
        assert!(c.check_args("echo", "").unwrap().is_empty());
        assert_eq!(c.get("ledger").unwrap().def.side_effect, SideEffect::Write);
    }

    #[test]
    fn unknown_tools_and_non_objects_are_named() {
        let c = Catalog::builtins();
        let e = c.check_args("rm_rf", "{}").unwrap_err().to_string();
        assert!(e.contains("\"rm_rf\"") && e.contains("echo"), "{e}");
        assert_eq!(c.check_args("echo", "[1]").unwrap_err(), ArgsError::NotAnObject("got an array".into()));
    }

    #[test]
    fn manifest_tools_join_the_builtins() {
        let schema = json!({"type":"object","properties":{"id":{"type":"string"}},"required":["id"]});
        let c = Catalog::new(vec![http_tool("lookup", schema)], "v1").unwrap();
        assert!(c.check_args("lookup", r#"{"id":"a"}"#).is_ok());
        assert!(c.check_args("lookup", r#"{"id":1}"#).is_err());
        assert!(c.get("echo").is_some());
        let info = c.info("lookup").unwrap();
        assert_eq!((info.kind.as_str(), info.side_effect.as_str()), ("http", "read"));
        assert_eq!(info.target, "POST http://127.0.0.1:1/x");
    }

    #[test]
    fn bad_declarations_name_the_field() {
        let e = Catalog::new(vec![http_tool("echo", json!({"type":"object"}))], "v").unwrap_err();
        assert_eq!(e.field, "name");
        let e = Catalog::new(vec![http_tool("has space", json!({"type":"object"}))], "v").unwrap_err();
        assert_eq!(e.field, "name");
        let e = Catalog::new(vec![http_tool("t", json!({"type":"string"}))], "v").unwrap_err();
        assert_eq!(e.field, "args_schema");
        let e = Catalog::new(vec![http_tool("t", json!({"type":"object","minProperties":"x"}))], "v").unwrap_err();
        assert_eq!(e.field, "args_schema");
        assert!(e.message.contains("not a valid JSON Schema"), "{e}");
    }
}
