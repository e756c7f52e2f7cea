//! The `grpc` planner: `baton.v1.AgentService/Propose`, served by the user's own code in any
//! language (see `examples/agent-python`). The agent gets the run summary, its latest steps (at
//! most `[agents.<name>] history_max_steps`; `step` says how many there are in all) and the
//! allowed tools; it answers a tool call or a finish, with what it spent.

use std::time::Duration;

use baton_core::plan::{Action, Proposal};
use baton_proto::v1::agent_service_client::AgentServiceClient;
use baton_proto::v1::{propose_response, ProposeRequest};
use tonic::transport::{Channel, Endpoint};

use super::{PlanRequest, Planner, PlannerError};
use crate::BoxFuture;

/// An agent from `[agents.<name>]`.
pub struct AgentPlanner {
    name: String,
    client: AgentServiceClient<Channel>,
    timeout: Duration,
    history_max_steps: usize,
}

impl AgentPlanner {
    /// A planner calling agent `name` (the connection is made on first use).
    pub fn new(name: &str, config: &baton_config::Agent) -> Result<Self, String> {
        let channel = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let client = AgentServiceClient::new(channel).max_decoding_message_size(config.max_response_bytes);
        Ok(Self {
            name: name.to_string(),
            client,
            timeout: Duration::from_millis(config.timeout_ms),
            history_max_steps: config.history_max_steps as usize,
        })
    }

    async fn ask(&self, req: PlanRequest<'_>) -> Result<Proposal, PlannerError> {
        let state = req.state;
        let spec = state.spec.clone().unwrap_or_default();
        let mut request = tonic::Request::new(ProposeRequest {
            run_id: state.run_id.clone(),
            tenant: state.tenant.clone(),
            goal: spec.goal.clone(),
            step: state.next_step,
            history: req.history[req.history.len().saturating_sub(self.history_max_steps)..].to_vec(),
            tools: req.tools,
            usage: state.usage,
            budget: state.budget,
            autonomy: spec.autonomy,
            labels: spec.labels,
        });
        request.set_timeout(self.timeout);
        if let Some(tp) = baton_telemetry::trace::current_traceparent().and_then(|t| t.parse().ok()) {
            request.metadata_mut().insert("traceparent", tp);
        }
        let reply = self.client.clone().propose(request).await.map_err(|status| {
            let message = format!("agent {}: {}: {}", self.name, status.code(), status.message());
            match status.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::ResourceExhausted
                | tonic::Code::Aborted
                | tonic::Code::Cancelled => PlannerError::retryable(message),
                _ => PlannerError::fatal(message),
            }
        })?;
        let reply = reply.into_inner();
        let mut usage = reply.usage.unwrap_or_default();
        usage.model_calls = usage.model_calls.max(1);
        let action = match reply.action {
            Some(propose_response::Action::Call(call)) => Action::Call(call),
            Some(propose_response::Action::Finish(result)) => Action::Finish(result),
            None => {
                return Err(PlannerError::fatal(format!(
                    "agent {}: the reply names neither a call nor a finish",
                    self.name
                )))
            }
        };
        Ok(Proposal { action, usage, text: reply.text })
    }
}

impl Planner for AgentPlanner {
    fn propose<'a>(&'a self, req: PlanRequest<'a>) -> BoxFuture<'a, Result<Proposal, PlannerError>> {
        Box::pin(self.ask(req))
    }
}
