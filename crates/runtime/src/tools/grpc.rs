//! gRPC tools from the manifest: `baton.v1.ToolService/Invoke` served by the user's own code.
//! A reply's `error.retryable` decides whether the step is retried; UNAVAILABLE,
//! DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED statuses are retryable, others are not.

use std::time::Duration;

use baton_core::catalog::GrpcAdapter;
use baton_proto::v1::tool_service_client::ToolServiceClient;
use baton_proto::v1::InvokeRequest;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use super::{Invocation, Tool, ToolError};
use crate::BoxFuture;

/// One gRPC tool.
pub struct GrpcTool {
    name: String,
    client: ToolServiceClient<Channel>,
    timeout: Duration,
}

impl GrpcTool {
    /// The tool `name` served at `adapter.endpoint` (connected on first use).
    pub fn new(name: &str, adapter: &GrpcAdapter) -> Result<Self, String> {
        let channel = Endpoint::from_shared(adapter.endpoint.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let client = ToolServiceClient::new(channel).max_decoding_message_size(adapter.max_response_bytes);
        Ok(Self { name: name.to_string(), client, timeout: Duration::from_millis(adapter.timeout_ms) })
    }
}

impl Tool for GrpcTool {
    fn invoke(&self, call: Invocation) -> BoxFuture<'static, Result<Value, ToolError>> {
        let (name, mut client, timeout) = (self.name.clone(), self.client.clone(), self.timeout);
        Box::pin(async move {
            let mut request = tonic::Request::new(InvokeRequest {
                tool: name.clone(),
                args_json: Value::Object(call.args.clone()).to_string(),
                idempotency_key: call.idempotency_key.clone(),
                run_id: call.run_id.clone(),
                step: call.step,
                attempt: call.attempt,
                tenant: call.tenant.clone(),
                fence: call.fence,
            });
            request.set_timeout(timeout);
            if let Some(tp) = baton_telemetry::trace::current_traceparent().and_then(|t| t.parse().ok()) {
                request.metadata_mut().insert("traceparent", tp);
            }
            let reply = tokio::select! {
                r = client.invoke(request) => r,
                _ = call.cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            let reply = reply
                .map_err(|status| {
                    let message = format!("tool {name}: {}: {}", status.code(), status.message());
                    match status.code() {
                        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => ToolError::Uncertain(message),
                        tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted => {
                            ToolError::retryable(message)
                        }
                        _ => ToolError::Fatal(message),
                    }
                })?
                .into_inner();
            if let Some(failure) = reply.error {
                let message = format!("tool {name}: {}", failure.message);
                return Err(if failure.retryable { ToolError::retryable(message) } else { ToolError::Fatal(message) });
            }
            if reply.output_json.trim().is_empty() {
                return Ok(Value::Object(Default::default()));
            }
            serde_json::from_str(&reply.output_json)
                .map_err(|e| ToolError::Fatal(format!("tool {name}: output_json is not JSON: {e}")))
        })
    }
}
