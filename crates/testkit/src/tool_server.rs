//! An HTTP tool server over real HTTP, for tests and demos: `/tools/<name>` answers as its
//! [`Behavior`] says and records every call (method, headers, body, query), so a test can count
//! calls and check the idempotency key and `traceparent` each one carried. Like a careful
//! external system it fences callers: it keeps the newest `Baton-Fence` it accepted per run and
//! refuses (409) a call with an older one — checked when the call arrives and again when it
//! takes effect (after any delay), so a caller that stalled mid-call cannot act late.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};

/// How a tool answers.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with `{"tool", "args", "call"}`.
    Ok,
    /// This status for the first `times` calls, then like `Ok`.
    FailFirst {
        /// HTTP status of the failures.
        status: u16,
        /// How many calls fail.
        times: u32,
    },
    /// This status on every call.
    Always(u16),
    /// Like `Ok`, after a delay.
    Slow(Duration),
    /// Like `Ok`; the first `times` calls take effect only after `delay`.
    SlowFirst {
        /// How long those calls take.
        delay: Duration,
        /// How many calls are slow.
        times: u32,
    },
}

/// One call the server received.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// HTTP method.
    pub method: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The `traceparent` header, if any.
    pub traceparent: Option<String>,
    /// Every header, lowercase names.
    pub headers: HashMap<String, String>,
    /// The JSON body (`null` if none).
    pub body: Value,
    /// The query string.
    pub query: String,
    /// The `Baton-Fence` header, if any.
    pub fence: Option<u64>,
    /// The caller's address (which host called, when hosts are network namespaces).
    pub peer: std::net::SocketAddr,
}

/// What became of one call: it took effect, or it was refused as a stale caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The call took effect (whatever the behavior answered).
    Accepted,
    /// Refused with 409: its fence was older than the newest accepted for its run.
    StaleFence {
        /// The call's fence.
        fence: u64,
        /// The newest fence accepted for the run when it was refused.
        newest: u64,
    },
}

#[derive(Default)]
struct Tools {
    behavior: HashMap<String, Behavior>,
    calls: HashMap<String, Vec<RecordedCall>>,
    /// Per tool, each call's verdict, in the order they were decided.
    verdicts: HashMap<String, Vec<(RecordedCall, Verdict)>>,
    /// The newest fence accepted per run id.
    newest_fence: HashMap<String, u64>,
}

/// The running server; stops when dropped.
pub struct ToolServer {
    /// Its port.
    pub port: u16,
    ip: std::net::IpAddr,
    tools: Arc<Mutex<Tools>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ToolServer {
    /// Starts on a free loopback port (`port` 0) or on `port`.
    pub async fn start(port: u16) -> std::io::Result<Self> {
        Self::start_at(std::net::Ipv4Addr::LOCALHOST.into(), port).await
    }

    /// Starts on `ip` (a free port when `port` is 0).
    pub async fn start_at(ip: std::net::IpAddr, port: u16) -> std::io::Result<Self> {
        let tools = Arc::new(Mutex::new(Tools::default()));
        let app = Router::new().route("/tools/{name}", any(call)).with_state(tools.clone());
        let listener = tokio::net::TcpListener::bind((ip, port)).await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { drop(stopped.await) }).await;
        });
        Ok(Self { port, ip, tools, _stop: stop })
    }

    /// `http://<ip>:<port>/tools/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}:{}/tools/{name}", self.ip, self.port)
    }

    /// Sets how `name` answers (the default is [`Behavior::Ok`]).
    pub fn set(&self, name: &str, behavior: Behavior) {
        self.tools.lock().unwrap_or_else(|e| e.into_inner()).behavior.insert(name.to_string(), behavior);
    }

    /// Every call of `name` so far, as received.
    pub fn calls(&self, name: &str) -> Vec<RecordedCall> {
        self.tools.lock().unwrap_or_else(|e| e.into_inner()).calls.get(name).cloned().unwrap_or_default()
    }

    /// The calls of `name` decided so far, with what became of each, in the order decided.
    pub fn verdicts(&self, name: &str) -> Vec<(RecordedCall, Verdict)> {
        self.tools.lock().unwrap_or_else(|e| e.into_inner()).verdicts.get(name).cloned().unwrap_or_default()
    }
}

/// Decides whether a call with `fence` for `run` may take effect now, and records it.
fn fence_check(tools: &Mutex<Tools>, name: &str, run: &str, record: &RecordedCall, settle: bool) -> Verdict {
    let mut t = tools.lock().unwrap_or_else(|e| e.into_inner());
    let newest = t.newest_fence.get(run).copied().unwrap_or(0);
    let verdict = match record.fence {
        Some(fence) if fence < newest => Verdict::StaleFence { fence, newest },
        Some(fence) => {
            if settle {
                t.newest_fence.insert(run.to_string(), fence);
            }
            Verdict::Accepted
        }
        None => Verdict::Accepted,
    };
    if settle || verdict != Verdict::Accepted {
        t.verdicts.entry(name.to_string()).or_default().push((record.clone(), verdict.clone()));
    }
    verdict
}

async fn call(
    State(tools): State<Arc<Mutex<Tools>>>,
    Path(name): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let record = RecordedCall {
        method: method.to_string(),
        idempotency_key: header("idempotency-key").unwrap_or_default(),
        traceparent: header("traceparent"),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        query: uri.query().unwrap_or_default().to_string(),
        fence: header("baton-fence").and_then(|f| f.parse().ok()),
        peer,
    };
    let run = header("x-baton-run-id").unwrap_or_default();
    let (behavior, n) = {
        let mut t = tools.lock().unwrap_or_else(|e| e.into_inner());
        let calls = t.calls.entry(name.clone()).or_default();
        calls.push(record.clone());
        let n = calls.len() as u32;
        (t.behavior.get(&name).cloned().unwrap_or(Behavior::Ok), n)
    };
    let refused = |verdict: Verdict| {
        (StatusCode::CONFLICT, json!({"error": format!("stale caller refused: {verdict:?}")}).to_string())
    };
    if let v @ Verdict::StaleFence { .. } = fence_check(&tools, &name, &run, &record, false) {
        return refused(v);
    }
    let delay = match behavior {
        Behavior::Slow(delay) => Some(delay),
        Behavior::SlowFirst { delay, times } if n <= times => Some(delay),
        _ => None,
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    // The effect happens now: a newer caller may have been accepted meanwhile.
    if let v @ Verdict::StaleFence { .. } = fence_check(&tools, &name, &run, &record, true) {
        return refused(v);
    }
    let ok = || (StatusCode::OK, json!({"tool": name, "args": record.body, "call": n}).to_string());
    let status = |code: u16| {
        let s = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (s, json!({"error": format!("scripted {code} from {name}")}).to_string())
    };
    match behavior {
        Behavior::FailFirst { status: code, times } if n <= times => status(code),
        Behavior::Always(code) => status(code),
        Behavior::Ok | Behavior::FailFirst { .. } | Behavior::Slow(_) | Behavior::SlowFirst { .. } => ok(),
    }
}
