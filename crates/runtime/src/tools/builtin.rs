//! Built-in tools: `echo` returns its arguments; `sleep` waits, and stops early when cancelled;
//! `flaky` fails with a retryable error by a deterministic rule, for failure drills.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Invocation, Tool, ToolError};
use crate::BoxFuture;

/// Returns its arguments and the idempotency key it was called with.
pub struct Echo;

impl Tool for Echo {
    fn invoke(&self, call: Invocation) -> BoxFuture<'static, Result<Value, ToolError>> {
        Box::pin(
            async move { Ok(json!({ "echo": Value::Object(call.args), "idempotency_key": call.idempotency_key })) },
        )
    }
}

/// Waits `ms` milliseconds.
pub struct Sleep;

impl Tool for Sleep {
    fn invoke(&self, call: Invocation) -> BoxFuture<'static, Result<Value, ToolError>> {
        Box::pin(async move {
            let ms = baton_core::tools::sleep_ms(&call.args).map_err(|e| ToolError::Fatal(e.to_string()))?;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(json!({ "slept_ms": ms })),
                _ = call.cancel.cancelled() => Err(ToolError::Cancelled),
            }
        })
    }
}

/// Fails retryably by the rule in its args (`fail_attempts` or `fail_rate`), else echoes.
pub struct Flaky;

impl Tool for Flaky {
    fn invoke(&self, call: Invocation) -> BoxFuture<'static, Result<Value, ToolError>> {
        Box::pin(async move {
            let rule = baton_core::tools::flaky_rule(&call.args).map_err(|e| ToolError::Fatal(e.to_string()))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            if baton_core::tools::flaky_fails(rule, &call.idempotency_key, call.attempt, now) {
                return Err(ToolError::retryable(format!("flaky: attempt {} failed as configured", call.attempt)));
            }
            Ok(json!({ "attempt": call.attempt, "idempotency_key": call.idempotency_key }))
        })
    }
}
