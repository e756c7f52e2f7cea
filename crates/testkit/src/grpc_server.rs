//! A gRPC server over real HTTP/2 for tests: a scripted `baton.v1.AgentService` (replies per
//! goal, every request recorded) and an echoing `baton.v1.ToolService` (every call recorded).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use baton_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use baton_proto::v1::tool_service_server::{ToolService, ToolServiceServer};
use baton_proto::v1::{
    propose_response, InvokeRequest, InvokeResponse, ProposeRequest, ProposeResponse, ToolCall, Usage,
};
use tonic::{Request, Response, Status};

/// One scripted agent answer.
#[derive(Debug, Clone)]
pub enum AgentReply {
    /// Call `tool` with `args` (JSON text).
    Call(String, String),
    /// Finish the run with this result.
    Finish(String),
}

#[derive(Default)]
struct Shared {
    replies: HashMap<String, VecDeque<AgentReply>>,
    proposals: HashMap<String, Vec<ProposeRequest>>,
    invocations: Vec<InvokeRequest>,
    /// The newest fence accepted per run: an older caller is refused.
    newest_fence: HashMap<String, u64>,
}

#[derive(Clone)]
struct Handler(Arc<Mutex<Shared>>);

/// The running server; stops when dropped.
pub struct GrpcServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl GrpcServer {
    /// Starts on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = Handler(shared.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(AgentServiceServer::new(handler.clone()))
                .add_service(ToolServiceServer::new(handler))
                .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async move {
                    drop(stopped.await)
                })
                .await;
        });
        Ok(Self { port, shared, _stop: stop })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues the agent's answers for runs whose goal is `goal`.
    pub fn script(&self, goal: &str, replies: Vec<AgentReply>) {
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.replies.entry(goal.to_string()).or_default().extend(replies);
    }

    /// Every Propose request received for `goal`.
    pub fn proposals(&self, goal: &str) -> Vec<ProposeRequest> {
        let s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.proposals.get(goal).cloned().unwrap_or_default()
    }

    /// Every ToolService/Invoke request received.
    pub fn invocations(&self) -> Vec<InvokeRequest> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).invocations.clone()
    }
}

#[tonic::async_trait]
impl AgentService for Handler {
    async fn propose(&self, request: Request<ProposeRequest>) -> Result<Response<ProposeResponse>, Status> {
        let req = request.into_inner();
        let reply = {
            let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
            s.proposals.entry(req.goal.clone()).or_default().push(req.clone());
            s.replies.get_mut(&req.goal).and_then(VecDeque::pop_front)
        };
        let action = match reply {
            Some(AgentReply::Call(tool, args_json)) => propose_response::Action::Call(ToolCall { tool, args_json }),
            Some(AgentReply::Finish(result)) => propose_response::Action::Finish(result),
            None => return Err(Status::failed_precondition(format!("no scripted answer for goal {:?}", req.goal))),
        };
        let usage = Usage { input_tokens: 10, output_tokens: 5, cost_micros: 3, ..Default::default() };
        Ok(Response::new(ProposeResponse { action: Some(action), usage: Some(usage), text: String::new() }))
    }
}

#[tonic::async_trait]
impl ToolService for Handler {
    async fn invoke(&self, request: Request<InvokeRequest>) -> Result<Response<InvokeResponse>, Status> {
        let req = request.into_inner();
        {
            let mut shared = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let newest = shared.newest_fence.entry(req.run_id.clone()).or_default();
            if req.fence < *newest {
                let message =
                    format!("stale caller: fence {} is older than {} (run {})", req.fence, newest, req.run_id);
                return Err(Status::failed_precondition(message));
            }
            *newest = req.fence;
            shared.invocations.push(req.clone());
        }
        let output = serde_json::json!({ "tool": req.tool, "key": req.idempotency_key, "args": req.args_json });
        Ok(Response::new(InvokeResponse { output_json: output.to_string(), error: None }))
    }
}
