//! A scripted OpenAI-compatible chat-completions server over real HTTP, for tests and demos.
//! Replies are scripted per goal (the first user message of the request), popped in order;
//! every request is recorded. A reply can be a tool call, a final text, an HTTP error (429 with
//! `Retry-After`, 500), a slow answer, malformed JSON, or a huge body.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

/// What one scripted reply says.
#[derive(Debug, Clone)]
pub enum Say {
    /// A tool call with these arguments (JSON text, sent as the `arguments` string).
    Call {
        /// Tool name.
        tool: String,
        /// Arguments JSON text (may be invalid on purpose).
        args: String,
    },
    /// A final answer without a tool call.
    Text(String),
    /// An HTTP error status with a body, and a `Retry-After` in seconds if set.
    Status {
        /// HTTP status.
        code: u16,
        /// `Retry-After` header, seconds.
        retry_after_secs: Option<u64>,
    },
    /// A 200 whose body is not JSON.
    Malformed,
    /// A 200 JSON body of about this many bytes.
    Huge(usize),
}

/// One scripted reply: what it says, the usage it reports, and how long it takes.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The content.
    pub say: Say,
    /// `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// `usage.completion_tokens`.
    pub completion_tokens: u64,
    /// Delay before answering.
    pub delay: Duration,
}

impl Reply {
    /// A tool call reporting 100 prompt and 20 completion tokens.
    pub fn call(tool: &str, args: &str) -> Self {
        Self::of(Say::Call { tool: tool.into(), args: args.into() })
    }

    /// A final answer reporting 100 prompt and 20 completion tokens.
    pub fn text(text: &str) -> Self {
        Self::of(Say::Text(text.into()))
    }

    /// An HTTP error.
    pub fn status(code: u16, retry_after_secs: Option<u64>) -> Self {
        Self::of(Say::Status { code, retry_after_secs })
    }

    /// `say`, reporting 100 prompt and 20 completion tokens, answered at once.
    pub fn of(say: Say) -> Self {
        Self { say, prompt_tokens: 100, completion_tokens: 20, delay: Duration::ZERO }
    }

    /// The same reply, reporting these token counts.
    pub fn tokens(mut self, prompt: u64, completion: u64) -> Self {
        (self.prompt_tokens, self.completion_tokens) = (prompt, completion);
        self
    }

    /// The same reply, answered after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Script {
    replies: HashMap<String, VecDeque<Reply>>,
    requests: HashMap<String, Vec<Value>>,
    /// Answer by the request's turn (its number of assistant messages) instead of popping:
    /// the same conversation always gets the same answer, and a script serves many runs.
    by_turn: bool,
}

/// The running server; stops when dropped.
pub struct ModelServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    script: Arc<Mutex<Script>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The text a script entry is keyed by when a goal has no script of its own.
pub const ANY_GOAL: &str = "*";

impl ModelServer {
    /// Starts on a free loopback port (`port` 0) or on `port`.
    pub async fn start(port: u16) -> std::io::Result<Self> {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .route("/v1/models", get(|| async { r#"{"object":"list","data":[{"id":"scripted","object":"model"}]}"# }))
            .route("/health", get(|| async { r#"{"status":"ok"}"# }))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { drop(stopped.await) }).await;
        });
        Ok(Self { port, script, _stop: stop })
    }

    /// `http://127.0.0.1:<port>/v1`, the `base_url` of a `[models.<name>]` entry.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Queues replies for requests whose goal is `goal` (or [`ANY_GOAL`]).
    pub fn script(&self, goal: &str, replies: Vec<Reply>) {
        let mut s = self.script.lock().unwrap_or_else(|e| e.into_inner());
        s.replies.entry(goal.to_string()).or_default().extend(replies);
    }

    /// From now on answers by turn: the reply for a request is the script's entry at the
    /// number of assistant messages in it, so a script serves any number of runs alike.
    pub fn answer_by_turn(&self) {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).by_turn = true;
    }

    /// Every request body received for `goal`, in order.
    pub fn requests(&self, goal: &str) -> Vec<Value> {
        let s = self.script.lock().unwrap_or_else(|e| e.into_inner());
        s.requests.get(goal).cloned().unwrap_or_default()
    }
}

/// The goal of a request: its first user message.
fn goal_of(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn complete(State(script): State<Arc<Mutex<Script>>>, body: Bytes) -> (StatusCode, HeaderMap, String) {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let goal = goal_of(&body);
    let reply = {
        let mut s = script.lock().unwrap_or_else(|e| e.into_inner());
        s.requests.entry(goal.clone()).or_default().push(body.clone());
        if s.by_turn {
            let turn = body["messages"].as_array().map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count());
            let script = s.replies.get(&goal).or_else(|| s.replies.get(ANY_GOAL));
            script.and_then(|q| q.get(turn)).cloned()
        } else {
            let own = s.replies.get_mut(&goal).and_then(VecDeque::pop_front);
            own.or_else(|| s.replies.get_mut(ANY_GOAL).and_then(VecDeque::pop_front))
        }
    };
    let reply = reply.unwrap_or_else(|| Reply::text("(the script has no more replies)"));
    tokio::time::sleep(reply.delay).await;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("static header"));
    let usage = json!({"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens});
    let model = body["model"].as_str().unwrap_or("scripted").to_string();
    let completion = |message: Value, finish: &str| {
        json!({"id": "chatcmpl-scripted", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})
        .to_string()
    };
    match reply.say {
        Say::Call { tool, args } => {
            let call = json!({"id": "call_1", "type": "function", "function": {"name": tool, "arguments": args}});
            let message = json!({"role": "assistant", "content": null, "tool_calls": [call]});
            (StatusCode::OK, headers, completion(message, "tool_calls"))
        }
        Say::Text(text) => (StatusCode::OK, headers, completion(json!({"role": "assistant", "content": text}), "stop")),
        Say::Status { code, retry_after_secs } => {
            if let Some(secs) = retry_after_secs {
                headers.insert("retry-after", secs.to_string().parse().expect("number header"));
            }
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, headers, json!({"error": {"message": format!("scripted {code}")}}).to_string())
        }
        Say::Malformed => (StatusCode::OK, headers, "{\"choices\": [ this is not json".to_string()),
        Say::Huge(bytes) => {
            let text = "x".repeat(bytes);
            (StatusCode::OK, headers, completion(json!({"role": "assistant", "content": text}), "stop"))
        }
    }
}

/// Reads a script file: `{"<goal or *>": [<reply>, ...]}` where a reply is
/// `{"call": "<tool>", "args": {...}}`, `{"text": "..."}` or `{"status": 429, "retry_after_secs": 1}`,
/// each optionally with `"prompt_tokens"`, `"completion_tokens"` and `"delay_ms"`.
pub fn parse_script(text: &str) -> Result<Vec<(String, Vec<Reply>)>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let goals = doc.as_object().ok_or("the script must be an object of goal -> replies")?;
    let mut out = Vec::new();
    for (goal, replies) in goals {
        let list = replies.as_array().ok_or_else(|| format!("{goal:?}: replies must be a list"))?;
        let mut parsed = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let say = if let Some(tool) = r["call"].as_str() {
                let args = r.get("args").cloned().unwrap_or_else(|| json!({}));
                Say::Call { tool: tool.into(), args: args.to_string() }
            } else if let Some(text) = r["text"].as_str() {
                Say::Text(text.into())
            } else if let Some(code) = r["status"].as_u64() {
                Say::Status { code: code as u16, retry_after_secs: r["retry_after_secs"].as_u64() }
            } else {
                return Err(format!("{goal:?}[{i}]: a reply needs \"call\", \"text\" or \"status\""));
            };
            let mut reply = Reply::of(say);
            reply.prompt_tokens = r["prompt_tokens"].as_u64().unwrap_or(reply.prompt_tokens);
            reply.completion_tokens = r["completion_tokens"].as_u64().unwrap_or(reply.completion_tokens);
            reply.delay = Duration::from_millis(r["delay_ms"].as_u64().unwrap_or(0));
            parsed.push(reply);
        }
        out.push((goal.clone(), parsed));
    }
    Ok(out)
}
