//! A model's reply text that is really a tool call. A small model served by a tool-call parser
//! it does not satisfy (llama.cpp with a chat template the model did not follow) sends its call
//! as text — `{"name": "lookup_order", "arguments": {"order_id": "A1"}}`, bare, in a ```json
//! fence, or in `<tool_call>` tags — and the reply carries no `tool_calls`. Read as a finish,
//! that JSON would become the run's result and the run would end `succeeded` with nothing run.
//! Baton reads it as the proposal it is instead: it is judged like any other (allowed tools,
//! schema, policy, `duplicate_call`, autonomy, approvals, budgets), so an unknown name is
//! rejected `unknown_tool` and fed back, and a valid call runs only if a structured one would.

use baton_proto::v1::ToolCall;
use serde_json::Value;

use baton_core::tools::canonical_args;

/// The first tool call written in `text`, and the text around it (trimmed). A call is a JSON
/// object with a string `name` and an `arguments` (or `parameters`) object or JSON string,
/// optionally wrapped as `{"function": {...}}`; it may be the whole text, or a fenced code block
/// (```` ``` ```` or ```` ```json ````) or a `<tool_call>…</tool_call>` element within it.
pub fn call_in_text(text: &str) -> Option<(ToolCall, String)> {
    let trimmed = text.trim();
    if let Some(call) = parse_call(trimmed) {
        return Some((call, String::new()));
    }
    for (start, end, body) in blocks(text) {
        if let Some(call) = parse_call(body) {
            let rest = format!("{}{}", &text[..start], &text[end..]);
            return Some((call, rest.trim().to_string()));
        }
    }
    None
}

/// Fenced code blocks and `<tool_call>` elements of `text`, in order: (start, end, body).
fn blocks(text: &str) -> Vec<(usize, usize, &str)> {
    let mut found = Vec::new();
    for (open, close) in [("```", "```"), ("<tool_call>", "</tool_call>")] {
        let mut from = 0;
        while let Some(at) = text[from..].find(open).map(|i| i + from) {
            let inner = at + open.len();
            // A fence's info string (`json`) runs to the end of its line.
            let body_start =
                if open == "```" { text[inner..].find('\n').map_or(inner, |i| inner + i + 1) } else { inner };
            let Some(len) = text[body_start..].find(close) else { break };
            let end = body_start + len + close.len();
            found.push((at, end, text[body_start..body_start + len].trim()));
            from = end;
        }
    }
    found.sort_by_key(|b| b.0);
    found
}

fn parse_call(json: &str) -> Option<ToolCall> {
    if !json.starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(json).ok()?;
    let call = value.get("function").filter(|f| f.is_object()).unwrap_or(&value);
    let name = call.get("name")?.as_str().filter(|n| !n.trim().is_empty())?;
    let args = call.get("arguments").or_else(|| call.get("parameters"))?;
    let args_json = match args {
        Value::Object(_) => args.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    Some(ToolCall { tool: name.trim().to_string(), args_json: canonical_args(&args_json) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tool: &str, args: &str) -> ToolCall {
        ToolCall { tool: tool.into(), args_json: args.into() }
    }

    #[test]
    fn bare_fenced_and_tagged_calls_are_read() {
        let bare = r#"{"name": "lookup_order", "arguments": {"order_id": "A1"}}"#;
        assert_eq!(call_in_text(bare), Some((call("lookup_order", r#"{"order_id":"A1"}"#), String::new())));
        let fenced =
            "I will look it up.\n```json\n{\"name\": \"lookup_order\", \"arguments\": {\"order_id\": \"A1\"}}\n```";
        assert_eq!(
            call_in_text(fenced),
            Some((call("lookup_order", r#"{"order_id":"A1"}"#), "I will look it up.".to_string()))
        );
        let tagged = "<tool_call>\n{\"name\": \"refund\", \"arguments\": \"{\\\"amount\\\": 20}\"}\n</tool_call>";
        assert_eq!(call_in_text(tagged), Some((call("refund", r#"{"amount":20}"#), String::new())));
        let wrapped = r#"{"type": "function", "function": {"name": "echo", "parameters": {}}}"#;
        assert_eq!(call_in_text(wrapped).unwrap().0, call("echo", "{}"));
        let two = "```\n{\"name\": \"a\", \"arguments\": {}}\n```\n```json\n{\"name\": \"b\", \"arguments\": {}}\n```";
        assert_eq!(call_in_text(two).unwrap().0.tool, "a", "the first call is taken");
    }

    #[test]
    fn answers_are_not_calls() {
        for text in [
            "Order A1 is in transit.",
            r#"{"status": "in transit"}"#,
            r#"{"name": "Alice"}"#,
            r#"{"name": "x", "arguments": 7}"#,
            "Here is the data:\n```json\n{\"order_id\": \"A1\"}\n```",
            "```json\n{\"name\": \"x\", \"arguments\": {}",
            "",
        ] {
            assert_eq!(call_in_text(text), None, "{text}");
        }
    }
}
