//! The redaction rule: argument fields with configured names (`telemetry.redact_fields`: a
//! password, a card number) and the values of known secrets (API keys, tool credentials) are
//! replaced by [`MASK`] in everything written to the run's event stream and the events topic.
//! The checkpoint keeps the real arguments: a recovered step must execute exactly its call.

use serde_json::Value;

use crate::v1::RunEvent;

/// What a redacted value is replaced with.
pub const MASK: &str = "[redacted]";

/// Secrets shorter than this are not masked inside text: they would mask ordinary words.
pub const MIN_SECRET_LEN: usize = 6;

/// Field names (matched case-insensitively, at any depth of an argument object) and secret
/// values to keep out of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    fields: Vec<String>,
    secrets: Vec<String>,
}

impl Redaction {
    /// A rule masking `fields` and every occurrence of `secrets` (short ones are ignored).
    pub fn new(fields: impl IntoIterator<Item = String>, secrets: impl IntoIterator<Item = String>) -> Self {
        let mut fields: Vec<String> = fields.into_iter().map(|f| f.to_lowercase()).filter(|f| !f.is_empty()).collect();
        fields.sort();
        fields.dedup();
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= MIN_SECRET_LEN).collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { fields, secrets }
    }

    /// True when the rule masks nothing.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.secrets.is_empty()
    }

    /// `args_json` with configured fields masked and secrets masked inside strings; text that
    /// is not JSON has its secrets masked.
    pub fn json(&self, args_json: &str) -> String {
        if self.is_empty() || args_json.is_empty() {
            return args_json.to_string();
        }
        match serde_json::from_str::<Value>(args_json) {
            Ok(mut value) => {
                if self.mask_value(&mut value) {
                    value.to_string()
                } else {
                    args_json.to_string()
                }
            }
            Err(_) => self.text(args_json),
        }
    }

    /// `text` with every secret masked.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// The event as it may leave, when the rule changes anything in it; `None` when it can go as
    /// is (most events: no arguments, no secret in their text), so nothing is copied.
    pub fn redacted(&self, event: &RunEvent) -> Option<RunEvent> {
        if self.is_empty() || (event.args_json.is_empty() && !self.secrets.iter().any(|s| event.detail.contains(s))) {
            return None;
        }
        let mut out = event.clone();
        self.event(&mut out);
        (out != *event).then_some(out)
    }

    /// Masks what an event carries of a call: its arguments and its detail text.
    pub fn event(&self, event: &mut RunEvent) {
        if self.is_empty() {
            return;
        }
        event.args_json = self.json(&event.args_json);
        event.detail = self.text(&event.detail);
    }

    /// Masks in place; true if anything changed.
    fn mask_value(&self, value: &mut Value) -> bool {
        match value {
            Value::Object(map) => {
                let mut changed = false;
                for (key, v) in map.iter_mut() {
                    if self.fields.iter().any(|f| f.eq_ignore_ascii_case(key)) {
                        if *v != Value::String(MASK.into()) {
                            *v = Value::String(MASK.into());
                            changed = true;
                        }
                    } else {
                        changed |= self.mask_value(v);
                    }
                }
                changed
            }
            Value::Array(items) => items.iter_mut().fold(false, |changed, v| self.mask_value(v) | changed),
            Value::String(s) => {
                let masked = self.text(s);
                let changed = masked != *s;
                *s = masked;
                changed
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Redaction {
        Redaction::new(["Password".to_string(), "card_number".into()], ["sk-live-123456".to_string(), "abc".into()])
    }

    #[test]
    fn configured_fields_are_masked_at_any_depth_and_in_any_case() {
        let out =
            rule().json(r#"{"user":"ann","PASSWORD":"hunter22","pay":{"card_number":"4111"},"list":[{"password":1}]}"#);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["user"], "ann");
        assert_eq!(v["PASSWORD"], MASK);
        assert_eq!(v["pay"]["card_number"], MASK);
        assert_eq!(v["list"][0]["password"], MASK);
    }

    #[test]
    fn secret_values_are_masked_inside_strings_and_plain_text() {
        let r = rule();
        let out = r.json(r#"{"note":"key is sk-live-123456, keep it"}"#);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["note"], "key is [redacted], keep it");
        assert_eq!(r.text("Bearer sk-live-123456"), "Bearer [redacted]");
        assert_eq!(r.json("not json sk-live-123456"), "not json [redacted]");
        // Too short to be masked inside text: "abc" stays.
        assert_eq!(r.text("abcdef"), "abcdef");
    }

    #[test]
    fn untouched_arguments_keep_their_exact_text_and_events_are_masked() {
        let r = rule();
        let args = r#"{ "b": 1,  "a": "x" }"#;
        assert_eq!(r.json(args), args);
        assert_eq!(Redaction::default().json(r#"{"password":"p"}"#), r#"{"password":"p"}"#);
        let mut e = RunEvent {
            args_json: r#"{"password":"p"}"#.into(),
            detail: "tool said sk-live-123456".into(),
            ..Default::default()
        };
        assert_eq!(r.redacted(&RunEvent { detail: "nothing secret".into(), ..Default::default() }), None);
        let masked = r.redacted(&e).expect("masked");
        r.event(&mut e);
        assert_eq!(masked, e);
        assert_eq!(e.args_json, r#"{"password":"[redacted]"}"#);
        assert_eq!(e.detail, "tool said [redacted]");
    }
}
