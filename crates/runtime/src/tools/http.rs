//! HTTP tools from the manifest. Each call sends `Idempotency-Key: <run>:<step>` (the same on
//! every attempt of the step), `Baton-Fence` (the claim's fencing token: a tool refuses a
//! caller older than the newest it has seen, see docs/failure-model.md), `traceparent`, and
//! `X-Baton-Run-Id` / `-Step` / `-Attempt`;
//! POST, PUT and PATCH send the arguments as the JSON body, GET and DELETE as query parameters.
//! 2xx returns the body (JSON, or the text as a JSON string); 408, 429 (with `Retry-After`),
//! 5xx, timeouts and connection errors are retryable; other 4xx and oversized bodies are not.

use std::time::Duration;

use baton_core::catalog::{HeaderValue, HttpAdapter};
use serde_json::{json, Value};

use super::{Invocation, Tool, ToolError};
use crate::http::{excerpt, read_limited, retry_after_ms, retryable_status, BodyError};
use crate::BoxFuture;

/// One HTTP tool.
pub struct HttpTool {
    name: String,
    adapter: HttpAdapter,
    client: reqwest::Client,
}

impl HttpTool {
    /// The tool `name`, called as `adapter` says.
    pub fn new(name: &str, adapter: HttpAdapter, client: reqwest::Client) -> Self {
        Self { name: name.to_string(), adapter, client }
    }
}

impl Tool for HttpTool {
    fn invoke(&self, call: Invocation) -> BoxFuture<'static, Result<Value, ToolError>> {
        let (name, a, client) = (self.name.clone(), self.adapter.clone(), self.client.clone());
        Box::pin(async move {
            let method = reqwest::Method::from_bytes(a.method.as_bytes())
                .map_err(|e| ToolError::Fatal(format!("tool {name}: method {}: {e}", a.method)))?;
            let mut request = client
                .request(method.clone(), &a.url)
                .timeout(Duration::from_millis(a.timeout_ms))
                .header("idempotency-key", &call.idempotency_key)
                .header("baton-fence", call.fence.to_string())
                .header("x-baton-run-id", &call.run_id)
                .header("x-baton-step", call.step.to_string())
                .header("x-baton-attempt", call.attempt.to_string());
            if let Some(tp) = baton_telemetry::trace::current_traceparent() {
                request = request.header("traceparent", tp);
            }
            for (header, value) in &a.headers {
                let value = match value {
                    HeaderValue::Literal(v) => v.clone(),
                    HeaderValue::Env { var, prefix } => match std::env::var(var) {
                        Ok(secret) => format!("{prefix}{secret}"),
                        Err(_) => {
                            return Err(ToolError::Fatal(format!(
                                "tool {name}: environment variable {var} for header {header} is not set on this worker"
                            )))
                        }
                    },
                };
                request = request.header(header.as_str(), value);
            }
            request = if method == reqwest::Method::GET || method == reqwest::Method::DELETE {
                let query: Vec<(String, String)> = call
                    .args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect();
                request.query(&query)
            } else {
                request.header("content-type", "application/json").body(Value::Object(call.args.clone()).to_string())
            };
            let what = format!("tool {name} ({} {})", a.method, a.url);
            let response = tokio::select! {
                r = request.send() => r,
                _ = call.cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            let response = response.map_err(|e| {
                if e.is_connect() {
                    // Never reached the tool: safe to try again.
                    return ToolError::retryable(format!("{what} unreachable: {e}"));
                }
                let kind = if e.is_timeout() { "timed out" } else { "lost the connection" };
                ToolError::Uncertain(format!("{what} {kind}: {e}"))
            })?;
            let status = response.status();
            let wait = retry_after_ms(response.headers());
            let body = read_limited(response, a.max_response_bytes).await.map_err(|e| match e {
                BodyError::TooLarge(n) => ToolError::Fatal(format!(
                    "{what}: response of {n}+ bytes is larger than max_response_bytes ({})",
                    a.max_response_bytes
                )),
                BodyError::Read(e) => ToolError::Uncertain(format!("{what}: reading the response failed: {e}")),
            })?;
            if !status.is_success() {
                let message = format!("{what} answered HTTP {}: {}", status.as_u16(), excerpt(&body, 300));
                if retryable_status(status) {
                    return Err(ToolError::Retryable { message, retry_after_ms: wait });
                }
                return Err(ToolError::Fatal(message));
            }
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(json!({}));
            }
            Ok(serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())))
        })
    }
}
