//! The tool manifest: a TOML file (named by `tools.manifest`) declaring the fleet's HTTP and
//! gRPC tools. [`load_manifest`] reads and checks it into a [`Catalog`]; every error names the
//! offending key, e.g. `tools.refund.args_schema: not a valid JSON Schema: ...`.
//!
//! ```toml
//! [tools.lookup_order]
//! description = "Look up an order by id"
//! kind = "http"                    # http | grpc
//! side_effect = "read"             # none | read | write | external
//! idempotent = true
//! requires_approval = false        # true: every call waits for a person's approval
//! allow_repeats = false            # true: a planner may repeat a write/external call verbatim
//! url = "http://orders.internal/lookup"
//! method = "POST"                  # POST | PUT | PATCH take a JSON body; GET | DELETE a query
//! timeout_ms = 5000
//! max_response_bytes = 65536
//! headers = { "X-Team" = "support" }
//! secret_headers = { Authorization = { env = "ORDERS_TOKEN", prefix = "Bearer " } }
//! args_schema = { type = "object", required = ["order_id"], properties = { order_id = { type = "string" } } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use baton_core::catalog::{version_of, Adapter, Catalog, GrpcAdapter, HeaderValue, HttpAdapter, SideEffect, ToolDef};
use serde::Deserialize;

use crate::Error;

/// Largest manifest file accepted.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tools: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    description: String,
    kind: String,
    side_effect: String,
    #[serde(default)]
    idempotent: bool,
    #[serde(default)]
    requires_approval: bool,
    #[serde(default)]
    allow_repeats: bool,
    args_schema: toml::Table,
    url: Option<String>,
    method: Option<String>,
    endpoint: Option<String>,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    secret_headers: BTreeMap<String, SecretHeader>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretHeader {
    env: String,
    #[serde(default)]
    prefix: String,
}

const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Reads and checks the manifest at `path`.
pub fn load_manifest(path: &Path) -> Result<Catalog, Error> {
    let file_err = |reason: String| Error::File { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| file_err(e.to_string()))?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(file_err(format!("is {} bytes, the limit is {MAX_MANIFEST_BYTES}", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    parse_manifest(&text)
}

/// Checks manifest text into a catalog whose version is the text's hash.
pub fn parse_manifest(text: &str) -> Result<Catalog, Error> {
    let file: File = toml::from_str(text)
        .map_err(|e| Error::Parse(format!("tool manifest: {}", e.to_string().replace('\n', " "))))?;
    let mut defs = Vec::new();
    for (name, entry) in file.tools {
        defs.push(entry_def(&name, entry)?);
    }
    Catalog::new(defs, &version_of(text))
        .map_err(|e| Error::Invalid { key: format!("tools.{}.{}", e.tool, e.field), reason: e.message })
}

fn entry_def(name: &str, e: Entry) -> Result<ToolDef, Error> {
    let key = |k: &str| format!("tools.{name}.{k}");
    let invalid = |k: &str, reason: String| Error::Invalid { key: key(k), reason };
    let side_effect = SideEffect::parse(&e.side_effect).ok_or_else(|| {
        invalid("side_effect", format!("{:?} is not one of none, read, write, external", e.side_effect))
    })?;
    if e.description.trim().is_empty() {
        return Err(invalid("description", "must say what the tool does (planners read it)".into()));
    }
    let timeout_ms = e.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        return Err(invalid("timeout_ms", "must be greater than 0".into()));
    }
    let max_response_bytes = e.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    if max_response_bytes == 0 {
        return Err(invalid("max_response_bytes", "must be greater than 0".into()));
    }
    let adapter = match e.kind.as_str() {
        "http" => {
            if e.endpoint.is_some() {
                return Err(invalid("endpoint", "is for grpc tools; an http tool has a url".into()));
            }
            let url = e.url.ok_or_else(|| invalid("url", "is required for an http tool".into()))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("url", format!("{url:?} must be an http:// or https:// URL")));
            }
            let method = e.method.unwrap_or_else(|| "POST".into()).to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                return Err(invalid("method", format!("{method:?} is not one of GET, POST, PUT, PATCH, DELETE")));
            }
            let mut headers = Vec::new();
            for (h, v) in e.headers {
                header_name(&key("headers"), &h)?;
                if v.chars().any(char::is_control) {
                    return Err(invalid("headers", format!("value of {h:?} has control characters")));
                }
                headers.push((h, HeaderValue::Literal(v)));
            }
            for (h, s) in e.secret_headers {
                header_name(&key("secret_headers"), &h)?;
                if s.env.is_empty() {
                    return Err(invalid("secret_headers", format!("{h:?} must name an environment variable")));
                }
                headers.push((h, HeaderValue::Env { var: s.env, prefix: s.prefix }));
            }
            Adapter::Http(HttpAdapter { url, method, headers, timeout_ms, max_response_bytes })
        }
        "grpc" => {
            if e.url.is_some() || e.method.is_some() || !e.headers.is_empty() || !e.secret_headers.is_empty() {
                return Err(invalid("kind", "a grpc tool has an endpoint, not url/method/headers".into()));
            }
            let endpoint = e.endpoint.ok_or_else(|| invalid("endpoint", "is required for a grpc tool".into()))?;
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(invalid("endpoint", format!("{endpoint:?} must be an http:// or https:// URL")));
            }
            Adapter::Grpc(GrpcAdapter { endpoint, timeout_ms, max_response_bytes })
        }
        other => return Err(invalid("kind", format!("{other:?} is not one of http, grpc"))),
    };
    let args_schema = serde_json::to_value(e.args_schema).map_err(|e| invalid("args_schema", e.to_string()))?;
    Ok(ToolDef {
        name: name.to_string(),
        description: e.description,
        args_schema,
        side_effect,
        idempotent: e.idempotent,
        requires_approval: e.requires_approval,
        allow_repeats: e.allow_repeats,
        adapter,
    })
}

fn header_name(key: &str, name: &str) -> Result<(), Error> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        return Ok(());
    }
    Err(Error::Invalid { key: key.to_string(), reason: format!("{name:?} is not a header name") })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[tools.lookup_order]
description = "Look up an order"
kind = "http"
side_effect = "read"
idempotent = true
url = "http://127.0.0.1:9/orders"
headers = { "X-Team" = "support" }
secret_headers = { Authorization = { env = "ORDERS_TOKEN", prefix = "Bearer " } }
args_schema = { type = "object", required = ["order_id"], properties = { order_id = { type = "string" } } }

[tools.notify]
description = "Send a message"
kind = "grpc"
side_effect = "external"
endpoint = "http://127.0.0.1:9"
args_schema = { type = "object" }
"#;

    fn key_of(text: &str) -> String {
        match parse_manifest(text).unwrap_err() {
            Error::Invalid { key, .. } => key,
            other => format!("{other}"),
        }
    }

    #[test]
    fn a_good_manifest_loads() {
        let c = parse_manifest(GOOD).unwrap();
        let t = c.get("lookup_order").unwrap();
        let Adapter::Http(h) = &t.def.adapter else { panic!() };
        assert_eq!(h.method, "POST");
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers[1].1, HeaderValue::Env { var: "ORDERS_TOKEN".into(), prefix: "Bearer ".into() });
        assert!(c.check_args("lookup_order", r#"{"order_id":"a1"}"#).is_ok());
        assert!(c.check_args("lookup_order", r#"{}"#).is_err());
        assert_eq!(c.get("notify").unwrap().def.side_effect, SideEffect::External);
        assert!(c.get("notify").unwrap().def.refuses_repeats(), "allow_repeats is off by default");
        let lenient = parse_manifest(&GOOD.replace("endpoint = ", "allow_repeats = true\nendpoint = ")).unwrap();
        assert!(lenient.get("notify").unwrap().def.allow_repeats);
        assert!(!lenient.get("notify").unwrap().def.refuses_repeats());
        assert_eq!(c.version().len(), 12);
        assert!(c.get("echo").is_some(), "built-ins stay");
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            key_of(&GOOD.replace(r#"side_effect = "read""#, r#"side_effect = "maybe""#)),
            "tools.lookup_order.side_effect"
        );
        assert_eq!(key_of(&GOOD.replace("http://127.0.0.1:9/orders", "ftp://x")), "tools.lookup_order.url");
        assert_eq!(key_of(&GOOD.replace(r#"kind = "grpc""#, r#"kind = "smtp""#)), "tools.notify.kind");
        assert_eq!(
            key_of(&GOOD.replace(r#"args_schema = { type = "object" }"#, r#"args_schema = { type = "array" }"#)),
            "tools.notify.args_schema"
        );
        assert_eq!(key_of("[tools.echo]\ndescription='x'\nkind='grpc'\nside_effect='none'\nendpoint='http://a'\nargs_schema={type='object'}"), "tools.echo.name");
        let unknown = parse_manifest(&GOOD.replace("idempotent = true", "idempotnt = true")).unwrap_err().to_string();
        assert!(unknown.contains("idempotnt"), "{unknown}");
    }
}
