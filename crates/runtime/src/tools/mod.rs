//! Tool adapters: the [`Tool`] trait, what a call receives ([`Invocation`]), and the
//! [`ToolRegistry`] a worker builds from its catalog: built-ins, HTTP tools and gRPC tools.

mod builtin;
mod grpc;
mod http;

use std::collections::HashMap;
use std::sync::Arc;

use baton_core::catalog::{Adapter, Catalog};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::BoxFuture;

/// One call of a tool for one step.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The run.
    pub run_id: String,
    /// The run's tenant.
    pub tenant: String,
    /// The step index.
    pub step: u32,
    /// Attempt of this step (0 first).
    pub attempt: u32,
    /// `<run>:<step>`: the same for every attempt of the step; side effects must dedupe on it.
    pub idempotency_key: String,
    /// Fence of the claim this call runs under (greater for every later claim).
    pub fence: u64,
    /// Arguments, a JSON object valid against the tool's schema.
    pub args: Map<String, Value>,
    /// Fires when the step must stop (lease lost, cancel, shutdown).
    pub cancel: CancellationToken,
}

/// How a tool call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// Trying again may work (timeout, unavailable, 429, 5xx).
    Retryable {
        /// What went wrong.
        message: String,
        /// The least wait the tool asked for (`Retry-After`).
        retry_after_ms: Option<u64>,
    },
    /// The request may have reached the tool but no answer came (a timeout, a connection lost
    /// mid-call): whether it took effect is unknown. Retried like `Retryable` when the tool is
    /// idempotent; a non-idempotent external tool's run waits for reconciliation instead.
    Uncertain(String),
    /// Trying again will not work (bad request, refused).
    Fatal(String),
    /// The call stopped because its cancellation token fired.
    Cancelled,
}

impl ToolError {
    /// A failure worth retrying, without a requested wait.
    pub fn retryable(message: impl Into<String>) -> Self {
        ToolError::Retryable { message: message.into(), retry_after_ms: None }
    }
}

/// The fleet's circuit breakers, as a step asks them about a manifest tool.
pub trait Breakers: Send + Sync {
    /// May a call of `tool` go out now? If it is the probe of a recovering tool, it may take
    /// `call_timeout_ms` before another probe is let through.
    fn allow<'a>(&'a self, tool: &'a str, call_timeout_ms: u64) -> BoxFuture<'a, Gate>;
    /// Reports how a call that went out ended (`ok`: the tool answered, even with a 4xx).
    fn record<'a>(&'a self, tool: &'a str, ok: bool) -> BoxFuture<'a, ()>;
}

/// A breaker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Call.
    Closed,
    /// Call: this is the probe of a recovering tool.
    Probe,
    /// Do not call before this time (ms since epoch).
    Open(i64),
}

/// No breakers: every call goes out (tests, built-in tools).
pub struct NoBreakers;

impl Breakers for NoBreakers {
    fn allow<'a>(&'a self, _tool: &'a str, _call_timeout_ms: u64) -> BoxFuture<'a, Gate> {
        Box::pin(async { Gate::Closed })
    }

    fn record<'a>(&'a self, _tool: &'a str, _ok: bool) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
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

    /// `base` plus an adapter for every HTTP and gRPC tool of `catalog`, sharing `http`.
    pub fn with_catalog(base: &ToolRegistry, catalog: &Catalog, http_client: &reqwest::Client) -> Self {
        let mut r = base.clone();
        for tool in catalog.tools() {
            let def = &tool.def;
            match &def.adapter {
                Adapter::Builtin => {}
                Adapter::Http(h) => {
                    r.register(&def.name, Arc::new(http::HttpTool::new(&def.name, h.clone(), http_client.clone())))
                }
                Adapter::Grpc(g) => match grpc::GrpcTool::new(&def.name, g) {
                    Ok(t) => r.register(&def.name, Arc::new(t)),
                    Err(e) => tracing::warn!(tool = %def.name, error = %e, "cannot set up gRPC tool"),
                },
            }
        }
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
