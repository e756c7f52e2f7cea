//! A stack for agent tests: the real services, configured with a scripted model endpoint
//! (`scripted`), a gRPC agent (`support`), a tool manifest of HTTP and gRPC tools served by the
//! test's own servers, and a policy rule capping refunds.

use std::time::Duration;

use baton_proto::v1::{planner, AutonomyLevel, Budget, RunSpec};

use crate::grpc_server::GrpcServer;
use crate::model_server::ModelServer;
use crate::tool_server::ToolServer;
use crate::{Stack, StackOptions};

/// The stack and the peers its runs talk to.
pub struct AgentStack {
    /// The Baton services, Redis and the broker.
    pub stack: Stack,
    /// The scripted model endpoint `scripted`.
    pub model: ModelServer,
    /// The HTTP tools `lookup_order`, `ship_order`, `refund`, `add_note`.
    pub tools: ToolServer,
    /// The gRPC agent `support` and the gRPC tool `notify`.
    pub grpc: GrpcServer,
}

/// The tool manifest the stack starts with, for tools served by `tools` and `grpc`.
pub fn manifest(tools: &ToolServer, grpc: &GrpcServer) -> String {
    format!(
        r#"
[tools.lookup_order]
description = "Look up an order by its id"
kind = "http"
side_effect = "read"
idempotent = true
url = "{lookup}"
args_schema = {{ type = "object", required = ["order_id"], additionalProperties = false, properties = {{ order_id = {{ type = "string" }} }} }}

[tools.ship_order]
description = "Ship an order; the same idempotency key ships it once"
kind = "http"
side_effect = "write"
idempotent = true
url = "{ship}"
timeout_ms = 20000
headers = {{ "X-Team" = "fulfilment" }}
secret_headers = {{ Authorization = {{ env = "SHIP_TOKEN", prefix = "Bearer " }} }}
args_schema = {{ type = "object", required = ["order_id"], properties = {{ order_id = {{ type = "string" }} }} }}

[tools.refund]
description = "Refund an amount to the customer's card"
kind = "http"
side_effect = "external"
idempotent = false
url = "{refund}"
args_schema = {{ type = "object", required = ["order_id", "amount"], properties = {{ order_id = {{ type = "string" }}, amount = {{ type = "number" }} }} }}

[tools.add_note]
description = "Add a note to the customer's file; the same note twice is fine"
kind = "http"
side_effect = "write"
idempotent = true
allow_repeats = true
url = "{note}"
args_schema = {{ type = "object", required = ["text"], properties = {{ text = {{ type = "string" }} }} }}

[tools.notify]
description = "Send the customer a message"
kind = "grpc"
side_effect = "external"
idempotent = true
endpoint = "{grpc}"
args_schema = {{ type = "object", required = ["text"], properties = {{ text = {{ type = "string" }} }} }}
"#,
        lookup = tools.url("lookup_order"),
        ship = tools.url("ship_order"),
        refund = tools.url("refund"),
        note = tools.url("add_note"),
        grpc = grpc.endpoint(),
    )
}

impl AgentStack {
    /// Starts the peers, then the full stack configured to use them. `tune` adjusts the options
    /// (timing, extra config lines) before the services start.
    pub async fn start(label: &str, tune: impl FnOnce(&mut StackOptions)) -> Self {
        let model = ModelServer::start(0).await.expect("model server");
        let tools = ToolServer::start(0).await.expect("tool server");
        let grpc = GrpcServer::start().await.expect("grpc server");
        let mut opts = StackOptions::default();
        opts.env.push(("SHIP_TOKEN".into(), "s3cret".into()));
        opts.config_toml = format!(
            r#"
[models.scripted]
base_url = "{model}"
model = "scripted-1"
timeout_ms = 2000
input_price_per_mtok = 1.0
output_price_per_mtok = 2.0
max_response_bytes = 65536

[agents.support]
endpoint = "{grpc}"
timeout_ms = 5000

[tools]
manifest = "{{dir}}/tools.toml"
reload_interval_ms = 200

[[policy.rules]]
tool = "refund"
arg = "amount"
max = 100
reason = "refunds above 100 need a human"
"#,
            model = model.base_url(),
            grpc = grpc.endpoint(),
        );
        tune(&mut opts);
        let mut stack = Stack::infra(label, opts).await;
        stack.write_file("tools.toml", &manifest(&tools, &grpc));
        stack.start_gateway().await;
        stack.start("worker").await;
        stack.start("scheduler").await;
        stack.start("reaper").await;
        Self { stack, model, tools, grpc }
    }
}

/// A run of the `scripted` model on `goal`, allowed `tools`.
pub fn model_run(goal: &str, tools: &[&str]) -> RunSpec {
    baton_core::plan::model_spec("scripted", goal, tools)
}

/// The same spec with another autonomy level.
pub fn with_autonomy(mut spec: RunSpec, level: AutonomyLevel) -> RunSpec {
    spec.autonomy = level as i32;
    spec
}

/// The same spec with this budget.
pub fn with_budget(mut spec: RunSpec, budget: Budget) -> RunSpec {
    spec.budget = Some(budget);
    spec
}

/// The same spec with a system prompt.
pub fn with_system(mut spec: RunSpec, system: &str) -> RunSpec {
    if let Some(planner::Kind::Model(m)) = spec.planner.as_mut().and_then(|p| p.kind.as_mut()) {
        m.system_prompt = system.into();
    }
    spec
}

/// Polls `check` every 50 ms until it holds, at most `within`.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}
