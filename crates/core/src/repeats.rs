//! What the `duplicate_call` check remembers: the `write` and `external` calls a planner-driven
//! run executed, as digests of (tool, canonical arguments) with the step that made each, kept in
//! the checkpoint head (`RunState.made_calls`). The judge reads them with the head it already
//! has, never the step history, so the check costs the same at step 10 and at step 10,000; the
//! list holds at most one entry per tool call the run's budget allows.

use sha2::{Digest, Sha256};

use crate::plan::is_script;
use crate::tools::canonical_args;
use crate::v1::{MadeCall, RunState, ToolCall};

/// The first 8 bytes (big-endian) of SHA-256 over `<tool>\n<canonical JSON arguments>`: two
/// calls of one tool whose arguments mean the same (key order, whitespace) have one digest.
pub fn digest(call: &ToolCall) -> u64 {
    let text = format!("{}\n{}", call.tool, canonical_args(&call.args_json));
    let hash = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// The step at which the run already executed exactly `call`, if it did.
pub fn made_at(state: &RunState, call: &ToolCall) -> Option<u32> {
    if state.made_calls.is_empty() {
        return None;
    }
    let d = digest(call);
    state.made_calls.iter().find(|m| m.digest == d).map(|m| m.step)
}

/// Records that step `state.next_step` is executing `call` (its tool is about to be invoked).
/// Script runs are not recorded: a fixed plan's repeats are its author's. Recording twice (a
/// retried or recovered step) keeps the first entry.
pub fn remember(state: &mut RunState, call: &ToolCall) {
    if is_script(state) {
        return;
    }
    let d = digest(call);
    if state.made_calls.iter().all(|m| m.digest != d) {
        state.made_calls.push(MadeCall { digest: d, step: state.next_step });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::catalog::Catalog;
    use crate::plan::{model_spec, script_spec};

    fn call(tool: &str, args: &str) -> ToolCall {
        ToolCall { tool: tool.into(), args_json: args.into() }
    }

    #[test]
    fn the_digest_ignores_key_order_and_whitespace_but_not_values_or_tools() {
        let a = digest(&call("refund", r#"{"order_id":"B7","amount":20}"#));
        assert_eq!(a, digest(&call("refund", "{\"amount\": 20,\n \"order_id\": \"B7\"}")));
        assert_ne!(a, digest(&call("refund", r#"{"order_id":"B7","amount":21}"#)));
        assert_ne!(a, digest(&call("charge", r#"{"order_id":"B7","amount":20}"#)));
        assert_ne!(digest(&call("echo", "{")), digest(&call("echo", "{ ")), "not JSON: hashed as given");
    }

    #[test]
    fn a_model_run_remembers_its_calls_once_and_a_script_does_not() {
        let policy = Policy::for_tests();
        let mut s = admit("r", "t", "", model_spec("m", "g", &["ledger"]), &policy, &Catalog::builtins(), 0).unwrap();
        s.next_step = 3;
        remember(&mut s, &call("ledger", r#"{"a":1,"b":2}"#));
        s.next_step = 4;
        remember(&mut s, &call("ledger", r#"{"b":2,"a":1}"#));
        assert_eq!(s.made_calls.len(), 1);
        assert_eq!(made_at(&s, &call("ledger", r#"{ "b": 2, "a": 1 }"#)), Some(3));
        assert_eq!(made_at(&s, &call("ledger", r#"{"a":2}"#)), None);
        let mut script =
            admit("r", "t", "", script_spec(&[("ledger", "{}")]), &policy, &Catalog::builtins(), 0).unwrap();
        remember(&mut script, &call("ledger", "{}"));
        assert!(script.made_calls.is_empty());
    }
}
