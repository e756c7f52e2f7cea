//! The `model` planner: one chat completion per step from an OpenAI-compatible endpoint with
//! tool calling. The request is the system prompt, the goal, and the run's latest steps as the
//! endpoint's history policy keeps them ([`super::history`]), each an assistant tool call plus
//! its result; `tools` lists the run's allowed tools with their schemas. A reply with a tool
//! call proposes it; so does a reply whose text is a tool call ([`super::text_call`]); any
//! other reply finishes the run. 429 (with `Retry-After`), 408, 5xx, timeouts and connection
//! errors are retryable; other 4xx, a malformed body or an oversized one are not.

use std::time::Duration;

use baton_core::plan::{Action, Proposal};
use baton_proto::v1::{planner, RunState, ToolCall, Usage};
use serde_json::{json, Value};

use super::history::{elided_note, shown};
use super::text_call::call_in_text;
use super::{step_result_text, PlanRequest, Planner, PlannerError};
use crate::http::{excerpt, read_limited, retry_after_ms, retryable_status, BodyError};
use crate::BoxFuture;

/// An OpenAI-compatible endpoint from `[models.<name>]`.
pub struct ModelPlanner {
    name: String,
    config: baton_config::Model,
    http: reqwest::Client,
}

impl ModelPlanner {
    /// The planner of endpoint `name`.
    pub fn new(name: &str, config: baton_config::Model, http: reqwest::Client) -> Self {
        Self { name: name.to_string(), config, http }
    }

    async fn complete(&self, req: PlanRequest<'_>) -> Result<Proposal, PlannerError> {
        let body = request_body(&self.config, &req);
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let mut request = self
            .http
            .post(&url)
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .header("content-type", "application/json")
            .body(body.to_string());
        if !self.config.api_key_env.is_empty() {
            let key = std::env::var(&self.config.api_key_env).map_err(|_| {
                PlannerError::fatal(format!(
                    "model endpoint {}: environment variable {} (api_key_env) is not set",
                    self.name, self.config.api_key_env
                ))
            })?;
            request = request.bearer_auth(key);
        }
        if let Some(tp) = baton_telemetry::trace::current_traceparent() {
            request = request.header("traceparent", tp);
        }
        let what = format!("model endpoint {} ({url})", self.name);
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() { "timed out" } else { "unreachable" };
            PlannerError::retryable(format!("{what} {kind}: {e}"))
        })?;
        let status = response.status();
        let wait = retry_after_ms(response.headers());
        let body = read_limited(response, self.config.max_response_bytes).await.map_err(|e| match e {
            BodyError::TooLarge(n) => PlannerError::fatal(format!(
                "{what}: response of {n}+ bytes is larger than max_response_bytes ({})",
                self.config.max_response_bytes
            )),
            BodyError::Read(e) => PlannerError::retryable(format!("{what}: reading the response failed: {e}")),
        })?;
        if !status.is_success() {
            let message = format!("{what} answered HTTP {}: {}", status.as_u16(), excerpt(&body, 300));
            if retryable_status(status) {
                return Err(PlannerError { message, retryable: true, retry_after_ms: wait });
            }
            return Err(PlannerError::fatal(message));
        }
        parse_reply(&body, &self.config).map_err(|e| PlannerError::fatal(format!("{what}: malformed completion: {e}")))
    }
}

impl Planner for ModelPlanner {
    fn propose<'a>(&'a self, req: PlanRequest<'a>) -> BoxFuture<'a, Result<Proposal, PlannerError>> {
        Box::pin(self.complete(req))
    }
}

fn model_settings(state: &RunState) -> (String, Option<f32>) {
    match state.spec.as_ref().and_then(baton_core::plan::kind) {
        Some(planner::Kind::Model(m)) => (m.system_prompt.clone(), m.temperature),
        _ => (String::new(), None),
    }
}

/// The chat-completions request for the run's next step.
pub fn request_body(config: &baton_config::Model, req: &PlanRequest<'_>) -> Value {
    let state = req.state;
    let (system, temperature) = model_settings(state);
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    let goal = state.spec.as_ref().map(|s| s.goal.clone()).unwrap_or_default();
    messages.push(json!({"role": "user", "content": goal}));
    let history = shown(req.history, state.next_step, config);
    if history.elided > 0 {
        messages.push(json!({"role": "user", "content": elided_note(history.elided)}));
    }
    for record in history.steps {
        let id = format!("call_{}", record.step);
        let content = if record.model_text.is_empty() { Value::Null } else { Value::String(record.model_text.clone()) };
        messages.push(json!({
            "role": "assistant",
            "content": content,
            "tool_calls": [{"id": id, "type": "function", "function": {"name": record.tool, "arguments": record.args_json}}],
        }));
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": step_result_text(record)}));
    }
    let max_tokens = match req.tokens_left {
        Some(left) => u64::from(config.max_output_tokens).min(left.max(1)),
        None => u64::from(config.max_output_tokens),
    };
    let mut body = json!({"model": config.model, "messages": messages, "max_tokens": max_tokens});
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let parameters: Value = serde_json::from_str(&t.args_schema_json).unwrap_or_else(|_| json!({"type": "object"}));
                json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": parameters}})
            })
            .collect();
        body["tools"] = Value::Array(tools);
        body["tool_choice"] = json!("auto");
        body["parallel_tool_calls"] = json!(false);
    }
    if let Some(t) = temperature {
        body["temperature"] = json!(t);
    }
    body
}

/// Reads a completion: the first tool call — structured, or written in the reply's text — or
/// else the reply text as a finish; usage and its cost.
pub fn parse_reply(body: &[u8], config: &baton_config::Model) -> Result<Proposal, String> {
    let reply: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", excerpt(body, 200)))?;
    let message = reply
        .pointer("/choices/0/message")
        .ok_or_else(|| format!("no choices[0].message in {}", excerpt(body, 200)))?;
    let text = message.get("content").and_then(Value::as_str).unwrap_or_default().to_string();
    let usage = usage_of(&reply, config);
    let call = message.get("tool_calls").and_then(Value::as_array).and_then(|calls| calls.first());
    let action = match call {
        Some(call) => {
            let function = call.get("function").ok_or("a tool call without a function")?;
            let name = function.get("name").and_then(Value::as_str).ok_or("a tool call without a name")?;
            // `arguments` is a JSON string; some servers send the object itself.
            let args_json = match function.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => "{}".to_string(),
                Some(other) => other.to_string(),
            };
            Action::Call(ToolCall { tool: name.to_string(), args_json })
        }
        None => match call_in_text(&text) {
            Some((call, rest)) => return Ok(Proposal { action: Action::Call(call), usage, text: rest }),
            None => Action::Finish(text.clone()),
        },
    };
    let text = if matches!(action, Action::Call(_)) { text } else { String::new() };
    Ok(Proposal { action, usage, text })
}

fn usage_of(reply: &Value, config: &baton_config::Model) -> Usage {
    let tokens = |name: &str| reply.pointer(&format!("/usage/{name}")).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (tokens("prompt_tokens"), tokens("completion_tokens"));
    // A price per million tokens is exactly the cost in micro-units per token.
    let cost = input as f64 * config.input_price_per_mtok + output as f64 * config.output_price_per_mtok;
    Usage {
        input_tokens: input,
        output_tokens: output,
        cost_micros: cost.round() as u64,
        model_calls: 1,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::admission::{admit, Policy};
    use baton_core::catalog::Catalog;
    use baton_core::plan::model_spec;
    use baton_proto::v1::{StepOutcome, StepRecord};

    fn config() -> baton_config::Model {
        baton_config::Model {
            base_url: "http://x/v1".into(),
            model: "qwen".into(),
            input_price_per_mtok: 2.0,
            output_price_per_mtok: 10.0,
            max_output_tokens: 500,
            ..Default::default()
        }
    }

    fn state() -> (RunState, Vec<StepRecord>) {
        let mut spec = model_spec("m", "find order 7", &["echo"]);
        if let Some(planner::Kind::Model(m)) = spec.planner.as_mut().and_then(|p| p.kind.as_mut()) {
            m.system_prompt = "be brief".into();
            m.temperature = Some(0.5);
        }
        let policy = Policy { models: vec!["m".into()], ..Policy::default() };
        let s = admit("r", "t", "", spec, &policy, &Catalog::builtins(), 0).unwrap();
        let mut history = vec![StepRecord {
            step: 0,
            tool: "echo".into(),
            args_json: r#"{"a":1}"#.into(),
            output_json: r#"{"ok":true}"#.into(),
            outcome: StepOutcome::Completed as i32,
            ..Default::default()
        }];
        history.push(StepRecord {
            step: 1,
            tool: "echo".into(),
            args_json: "{".into(),
            outcome: StepOutcome::Rejected as i32,
            reason_code: "invalid_args".into(),
            error: "not JSON".into(),
            ..Default::default()
        });
        (s, history)
    }

    #[test]
    fn the_request_replays_the_run() {
        let (s, history) = state();
        let tools = vec![Catalog::builtins().info("echo").unwrap()];
        let body =
            request_body(&config(), &PlanRequest { state: &s, history: &history, tools, tokens_left: Some(100) });
        let roles: Vec<&str> =
            body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant", "tool"]);
        assert_eq!(body["messages"][1]["content"], "find order 7");
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["arguments"], r#"{"a":1}"#);
        assert_eq!(body["messages"][3]["tool_call_id"], "call_0");
        assert_eq!(body["messages"][3]["content"], r#"{"ok":true}"#);
        assert_eq!(body["messages"][5]["content"], "rejected by the runtime (invalid_args): not JSON");
        assert_eq!(body["tools"][0]["function"]["name"], "echo");
        assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(body["max_tokens"], 100, "capped by the token budget left");
        assert_eq!(body["temperature"], 0.5);
    }

    #[test]
    fn a_long_run_is_shown_as_its_policy_says_with_a_note() {
        let (mut s, _) = state();
        let history: Vec<StepRecord> = (0..40)
            .map(|i| StepRecord {
                step: i,
                tool: "echo".into(),
                args_json: format!(r#"{{"i":{i}}}"#),
                output_json: "x".repeat(100),
                outcome: StepOutcome::Completed as i32,
                ..Default::default()
            })
            .collect();
        s.next_step = 40;
        let policy = baton_config::Model { history_recent_steps: 4, history_budget_tokens: 0, ..config() };
        let body =
            request_body(&policy, &PlanRequest { state: &s, history: &history, tools: vec![], tokens_left: None });
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3 + 2 * 4, "system, goal, the note, 4 exchanges");
        assert_eq!(messages[1]["content"], "find order 7", "the goal is kept");
        let note = messages[2]["content"].as_str().unwrap();
        assert!(note.starts_with("[36 earlier steps of this run are not shown"), "{note}");
        assert_eq!(messages[3]["tool_calls"][0]["id"], "call_36");
        let short = request_body(
            &config(),
            &PlanRequest { state: &s, history: &history[..2], tools: vec![], tokens_left: None },
        );
        assert!(
            short["messages"][2]["content"].as_str().unwrap().starts_with("[38 earlier steps"),
            "steps never read count too"
        );
    }

    #[test]
    fn replies_become_proposals_with_cost() {
        let call = br#"{"choices":[{"message":{"content":"checking","tool_calls":[{"id":"x","type":"function",
            "function":{"name":"echo","arguments":"{\"q\":2}"}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":1000,"completion_tokens":100}}"#;
        let p = parse_reply(call, &config()).unwrap();
        assert_eq!(p.action, Action::Call(ToolCall { tool: "echo".into(), args_json: r#"{"q":2}"#.into() }));
        assert_eq!(p.text, "checking");
        assert_eq!((p.usage.input_tokens, p.usage.output_tokens, p.usage.cost_micros), (1000, 100, 3000));
        let done = br#"{"choices":[{"message":{"content":"order 7 shipped"}}],"usage":{"prompt_tokens":5,"completion_tokens":3}}"#;
        assert_eq!(parse_reply(done, &config()).unwrap().action, Action::Finish("order 7 shipped".into()));
        let text_call = br#"{"choices":[{"message":{"content":"```json\n{\"name\": \"lookup_order\", \"arguments\": {\"order_id\": \"A1\"}}\n```"}}]}"#;
        let p = parse_reply(text_call, &config()).unwrap();
        let read = ToolCall { tool: "lookup_order".into(), args_json: r#"{"order_id":"A1"}"#.into() };
        assert_eq!((p.action, p.text.as_str()), (Action::Call(read), ""), "a call written as text is a proposal");
        assert!(parse_reply(b"<html>", &config()).unwrap_err().contains("not JSON"));
        assert!(parse_reply(br#"{"choices":[]}"#, &config()).unwrap_err().contains("choices[0]"));
    }
}
