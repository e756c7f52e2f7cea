//! Tool adapters: the [`Tool`] trait, what a call receives ([`Invocation`]) and the registry.

mod builtin;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::BoxFuture;

/// One call of a tool for one step.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The run.
    pub run_id: String,
    /// The step index.
    pub step: u32,
    /// Attempt of this step (0 first).
    pub attempt: u32,
    /// `<run>:<step>`: the same for every attempt of the step; side effects must dedupe on it.
    pub idempotency_key: String,
    /// Fence of the claim this call runs under (greater for every later claim).
    pub fence: u64,
    /// Arguments, a JSON object.
    pub args: Map<String, Value>,
    /// Fires when the step must stop (lease lost, cancel, shutdown).
    pub cancel: CancellationToken,
}

/// How a tool call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// Trying again may work (timeout, unavailable).
    Retryable(String),
    /// Trying again will not work (bad arguments, refused).
    Fatal(String),
    /// The call stopped because its cancellation token fired.
    Cancelled,
}

/// A tool the runtime can call.
pub trait Tool: Send + Sync {
    /// Runs the call; the output is a JSON value.
    fn invoke(&self, call: Invocation) -> BoxFuture<'static, Result<Value, ToolError>>;
}

/// Tools by name.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: HashMap<String, Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// The built-in tools that need no outside system: `echo`, `sleep` and `flaky`.
    /// (`wait` is handled by the runtime itself; `ledger` needs Redis and is added by the worker.)
    pub fn builtins() -> Self {
        let mut r = Self::default();
        r.register("echo", Arc::new(builtin::Echo));
        r.register("sleep", Arc::new(builtin::Sleep));
        r.register("flaky", Arc::new(builtin::Flaky));
        r
    }

    /// Adds or replaces a tool.
    pub fn register(&mut self, name: &str, tool: Arc<dyn Tool>) {
        self.tools.insert(name.to_string(), tool);
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.get(name).cloned()
    }
}
