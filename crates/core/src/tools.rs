//! Arguments of tool calls: parsing them into a JSON object, and reading the built-in tools'
//! own arguments (`sleep`, `wait`, `flaky`). Their schemas are in [`crate::catalog`], which
//! checks every call; these readers are what the built-ins use once a call was accepted.

use serde_json::{Map, Value};

/// Longest a `sleep` step may ask for; longer waits belong to timers, not to a held lease.
pub const MAX_SLEEP_MS: u64 = 10 * 60 * 1000;

/// Longest a `wait` step may park a run (the run's deadline still applies).
pub const MAX_WAIT_MS: u64 = 30 * 24 * 3600 * 1000;

/// The tool that parks a run on a timer instead of running anything.
pub const WAIT_TOOL: &str = "wait";

/// Why a tool call's arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The tool is not known to this fleet.
    #[error("unknown tool {name:?} (known: {known})")]
    UnknownTool {
        /// The name asked for.
        name: String,
        /// The tools the fleet has, comma-separated.
        known: String,
    },
    /// The arguments are not a JSON object.
    #[error("args must be a JSON object: {0}")]
    NotAnObject(String),
    /// A field is missing or has the wrong type or range.
    #[error("{0}")]
    Invalid(String),
}

/// Parses `args_json` (empty means `{}`) into a JSON object.
pub fn parse_args(args_json: &str) -> Result<Map<String, Value>, ArgsError> {
    if args_json.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(args_json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ArgsError::NotAnObject(format!("got {}", kind(&other)))),
        Err(e) => Err(ArgsError::NotAnObject(e.to_string())),
    }
}

/// `args_json` in canonical form — object keys sorted at every level, no insignificant
/// whitespace — so the same arguments read the same in records, digests and approvals. Text that
/// is not JSON comes back as it is (the judge rejects it with `invalid_args`).
pub fn canonical_args(args_json: &str) -> String {
    match serde_json::from_str::<Value>(args_json) {
        Ok(value) => crate::approval::canonical_json(&value),
        Err(_) => args_json.to_string(),
    }
}

/// The `ms` argument of `sleep`: a whole number of milliseconds up to [`MAX_SLEEP_MS`].
pub fn sleep_ms(args: &Map<String, Value>) -> Result<u64, ArgsError> {
    let ms = args.get("ms").ok_or_else(|| ArgsError::Invalid("sleep needs \"ms\" (milliseconds)".into()))?;
    let ms = ms
        .as_u64()
        .ok_or_else(|| ArgsError::Invalid(format!("sleep \"ms\" must be a non-negative integer, got {ms}")))?;
    if ms > MAX_SLEEP_MS {
        return Err(ArgsError::Invalid(format!("sleep \"ms\" must be at most {MAX_SLEEP_MS}, got {ms}")));
    }
    Ok(ms)
}

/// When a `wait` step wakes: `{"ms": d}` (after `now_ms`) or `{"until_ms": t}` (absolute).
pub fn wait_until(args: &Map<String, Value>, now_ms: i64) -> Result<i64, ArgsError> {
    match (args.get("ms").map(Value::as_u64), args.get("until_ms").map(Value::as_i64)) {
        (Some(Some(ms)), None) if ms <= MAX_WAIT_MS => Ok(now_ms.saturating_add(ms as i64)),
        (None, Some(Some(t))) if t >= 0 => Ok(t),
        _ => Err(ArgsError::Invalid(format!(
            "wait needs exactly one of \"ms\" (0..={MAX_WAIT_MS}) or \"until_ms\" (ms since epoch)"
        ))),
    }
}

/// When a `flaky` call fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlakyRule {
    /// Fail attempts `0..n` of each step, then succeed.
    FirstAttempts(u32),
    /// Fail each attempt with this probability, decided by a hash of key and attempt.
    Rate(f64),
    /// Fail every attempt until this time (ms since epoch): an outage that ends.
    Until(i64),
}

/// The failure rule of a `flaky` call: `{"fail_attempts": n}`, `{"fail_rate": p}` or
/// `{"fail_until_ms": t}`.
pub fn flaky_rule(args: &Map<String, Value>) -> Result<FlakyRule, ArgsError> {
    let rules = [
        args.get("fail_attempts")
            .map(|v| v.as_u64().filter(|n| *n <= 1000).map(|n| FlakyRule::FirstAttempts(n as u32))),
        args.get("fail_rate").map(|v| v.as_f64().filter(|p| (0.0..=1.0).contains(p)).map(FlakyRule::Rate)),
        args.get("fail_until_ms").map(|v| v.as_i64().map(FlakyRule::Until)),
    ];
    match rules.iter().flatten().collect::<Vec<_>>().as_slice() {
        [Some(rule)] => Ok(*rule),
        _ => Err(ArgsError::Invalid(
            "flaky needs exactly one of \"fail_attempts\" (0..=1000), \"fail_rate\" (0..=1) or \"fail_until_ms\""
                .into(),
        )),
    }
}

/// Whether attempt `attempt` of the step keyed `key` fails under `rule` at `now_ms`
/// (deterministic for the same inputs).
pub fn flaky_fails(rule: FlakyRule, key: &str, attempt: u32, now_ms: i64) -> bool {
    match rule {
        FlakyRule::FirstAttempts(n) => attempt < n,
        FlakyRule::Until(t) => now_ms < t,
        FlakyRule::Rate(p) => {
            // FNV-1a over key and attempt: the same call always decides the same way.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in key.bytes().chain(attempt.to_le_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            ((h % 10_000) as f64) < p * 10_000.0
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: &str) -> Map<String, Value> {
        parse_args(json).unwrap()
    }

    #[test]
    fn args_must_be_an_object() {
        assert_eq!(parse_args("[1]").unwrap_err(), ArgsError::NotAnObject("got an array".into()));
        assert!(matches!(parse_args("{"), Err(ArgsError::NotAnObject(_))));
        assert!(parse_args(" ").unwrap().is_empty());
    }

    #[test]
    fn canonical_args_sort_keys_and_drop_whitespace() {
        assert_eq!(
            canonical_args("{\"b\": [1, {\"d\":1, \"c\":2}],\n \"a\": \"x y\"}"),
            r#"{"a":"x y","b":[1,{"c":2,"d":1}]}"#
        );
        assert_eq!(canonical_args("{ not json"), "{ not json");
        assert_eq!(canonical_args(""), "");
    }

    #[test]
    fn sleep_reads_ms() {
        assert_eq!(sleep_ms(&args(r#"{"ms":5}"#)), Ok(5));
        assert!(sleep_ms(&args("{}")).unwrap_err().to_string().contains("needs \"ms\""));
        assert!(sleep_ms(&args(r#"{"ms":-1}"#)).is_err());
        assert!(sleep_ms(&args(r#"{"ms":600001}"#)).is_err());
    }

    #[test]
    fn wait_takes_ms_or_until() {
        assert_eq!(wait_until(&args(r#"{"ms":100}"#), 1_000), Ok(1_100));
        assert_eq!(wait_until(&args(r#"{"until_ms":5}"#), 1_000), Ok(5));
        assert!(wait_until(&args(r#"{"ms":1,"until_ms":2}"#), 0).is_err());
        assert!(wait_until(&args("{}"), 0).is_err());
    }

    #[test]
    fn flaky_is_deterministic() {
        let rule = flaky_rule(&args(r#"{"fail_attempts":2}"#)).unwrap();
        assert!(flaky_fails(rule, "r:0", 0, 0) && flaky_fails(rule, "r:0", 1, 0) && !flaky_fails(rule, "r:0", 2, 0));
        let rule = flaky_rule(&args(r#"{"fail_rate":0.3}"#)).unwrap();
        let fails = (0..1000).filter(|i| flaky_fails(rule, &format!("r:{i}"), 0, 0)).count();
        assert!((200..400).contains(&fails), "{fails}");
        assert_eq!(flaky_fails(rule, "r:7", 1, 0), flaky_fails(rule, "r:7", 1, 9));
        let rule = flaky_rule(&args(r#"{"fail_until_ms":100}"#)).unwrap();
        assert!(flaky_fails(rule, "r:0", 5, 99) && !flaky_fails(rule, "r:0", 0, 100));
        assert!(flaky_rule(&args(r#"{"fail_rate":2}"#)).is_err());
        assert!(flaky_rule(&args(r#"{"fail_rate":0.5,"fail_attempts":1}"#)).is_err());
    }
}
