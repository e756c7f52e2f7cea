//! The `ledger` tool: a real, auditable side effect. Each call is recorded in its run's ledger
//! in Redis under its idempotency key with the fence it ran under (see
//! `baton_store::Store::ledger_record`).

use baton_runtime::{BoxFuture, Invocation, Tool, ToolError};
use baton_store::Store;
use serde_json::{json, Value};

/// Records every call in the effect ledger.
pub struct Ledger {
    /// Where calls are recorded.
    pub store: Store,
    /// This worker's id, recorded with each call.
    pub worker: String,
    /// How long a ledger written after its run ended is kept (the run's retention).
    pub ttl_ms: u64,
}

impl Tool for Ledger {
    fn invoke(&self, call: Invocation) -> BoxFuture<'static, Result<Value, ToolError>> {
        let store = self.store.clone();
        let (worker, ttl_ms) = (self.worker.clone(), self.ttl_ms);
        Box::pin(async move {
            let calls = store
                .ledger_record(&call.idempotency_key, call.fence, &worker, ttl_ms)
                .await
                .map_err(|e| ToolError::retryable(format!("ledger unavailable: {e}")))?;
            Ok(json!({ "key": call.idempotency_key, "calls": calls }))
        })
    }
}
