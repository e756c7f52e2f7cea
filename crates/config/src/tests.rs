//! Layering and validation tests, fed from maps and temp files (never the process env).

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_are_valid() {
    let c = load(&Sources::default()).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn layers_apply_in_order() {
    let dir = std::env::temp_dir().join(format!("baton-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("baton.toml");
    std::fs::write(&file, "[worker]\nconcurrency = 4\nlane = \"main\"\n[kafka]\nbrokers = \"file:1\"\n").unwrap();
    let sources = Sources {
        file: Some(file),
        env: env(&[("BATON_KAFKA_BROKERS", "env:2"), ("PATH", "/bin"), ("BATON_WORKER_LEASE_TTL_MS", "40000")]),
        overrides: vec!["worker.concurrency=8".into()],
    };
    let c = load(&sources).unwrap();
    assert_eq!(c.kafka.brokers, "env:2");
    assert_eq!(c.worker.concurrency, 8);
    assert_eq!(c.worker.lease_ttl_ms, 40000);
}

#[test]
fn list_values_parse_from_env() {
    let c = load(&Sources { env: env(&[("BATON_RUNS_LANES", r#"["main","canary"]"#)]), ..Default::default() }).unwrap();
    assert_eq!(c.runs.lanes, vec!["main", "canary"]);
}

#[test]
fn unknown_env_key_is_named() {
    let e = load(&Sources { env: env(&[("BATON_WORKER_CONCURENCY", "3")]), ..Default::default() }).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("BATON_WORKER_CONCURENCY") && msg.contains("worker.concurency"), "{msg}");
}

#[test]
fn other_tools_variables_are_not_config() {
    let c =
        load(&Sources { env: env(&[("BATON_PROFILE", "release"), ("BATON_ADDR", "http://x")]), ..Default::default() });
    assert_eq!(c.unwrap(), Config::default());
}

#[test]
fn wrong_type_names_the_key() {
    let e = load(&Sources { overrides: vec!["worker.concurrency=lots".into()], ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("concurrency"), "{e}");
}

#[test]
fn inconsistent_values_are_refused() {
    let e = load(&Sources { overrides: vec!["worker.heartbeat_ms=20000".into()], ..Default::default() }).unwrap_err();
    assert!(e.to_string().starts_with("worker.heartbeat_ms:"), "{e}");
    let e = load(&Sources { overrides: vec!["kafka.assignment_strategy=sticky".into()], ..Default::default() })
        .unwrap_err();
    assert!(e.to_string().starts_with("kafka.assignment_strategy:"), "{e}");
    // A retry record waiting 10 min in its tier topic must not expire first.
    let e =
        load(&Sources { overrides: vec!["kafka.task_retention_ms=1000000".into()], ..Default::default() }).unwrap_err();
    assert!(e.to_string().starts_with("kafka.task_retention_ms:"), "{e}");
}

#[test]
fn a_worker_name_is_one_a_pod_could_have() {
    let named = load(&Sources { env: env(&[("BATON_WORKER_NAME", "baton-worker-7c9f-x2k")]), ..Default::default() });
    assert_eq!(named.unwrap().worker.name, "baton-worker-7c9f-x2k");
    for bad in ["worker@1", "two words", "a/b", &"w".repeat(254)] {
        let e = load(&Sources { env: env(&[("BATON_WORKER_NAME", bad)]), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("worker.name"), "{bad}: {e}");
    }
}

#[test]
fn missing_file_is_an_error() {
    let e = load(&Sources { file: Some("/nonexistent/baton.toml".into()), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/baton.toml"), "{e}");
}

#[test]
fn dump_round_trips() {
    let c = Config::default();
    let back: Config = toml::from_str(&dump(&c)).unwrap();
    assert_eq!(back, c);
}

fn with_file(name: &str, text: &str) -> Sources {
    let dir = std::env::temp_dir().join(format!("baton-config-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("baton.toml");
    std::fs::write(&file, text).unwrap();
    Sources { file: Some(file), ..Default::default() }
}

#[test]
fn models_agents_and_rules_load_and_validate() {
    let text = r#"
[models.local]
base_url = "http://127.0.0.1:18186/v1"
model = "qwen"
input_price_per_mtok = 0.5
[agents.support]
endpoint = "http://127.0.0.1:50071"
[[policy.rules]]
tool = "refund"
arg = "amount"
max = 100
"#;
    let c = load(&with_file("good", text)).unwrap();
    assert_eq!(c.models["local"].timeout_ms, 60_000);
    let p = c.admission_policy();
    assert_eq!((p.models, p.agents), (vec!["local".to_string()], vec!["support".to_string()]));
    assert_eq!(c.policy.rules()[0].tenant, "*");
    let bad = load(&with_file("bad-url", &text.replace("http://127.0.0.1:18186/v1", "127.0.0.1"))).unwrap_err();
    assert!(bad.to_string().starts_with("models.local.base_url:"), "{bad}");
    let bad = load(&with_file("bad-rule", &text.replace("max = 100", "deny = true"))).unwrap_err();
    assert!(bad.to_string().starts_with("policy.rules[0]:"), "{bad}");
    let bad = load(&with_file("bad-key", &text.replace("model = \"qwen\"", "modle = \"qwen\""))).unwrap_err();
    assert!(bad.to_string().contains("modle"), "{bad}");
}

#[test]
fn gate_settings_are_checked() {
    let with = |overrides: &[&str]| {
        load(&Sources { overrides: overrides.iter().map(|s| s.to_string()).collect(), ..Default::default() })
    };
    let e = with(&["breakers.failures=0"]).unwrap_err().to_string();
    assert!(e.contains("breakers.failures"), "{e}");
    let e = with(&["switches.refresh_ms=10"]).unwrap_err().to_string();
    assert!(e.contains("switches.refresh_ms"), "{e}");
    let e = with(&["approvals.on_expiry=\"escalate\"", "approvals.ttl_ms=0"]).unwrap_err().to_string();
    assert!(e.contains("approvals.on_expiry"), "{e}");
    assert!(with(&["approvals.on_deny=\"sometimes\""]).is_err());
    let c = with(&["approvals.on_deny=\"end_run\"", "approvals.ttl_ms=5000"]).unwrap();
    let policy = c.approvals.policy();
    assert_eq!((policy.on_deny, policy.ttl_ms), (baton_core::approval::OnDeny::EndRun, 5000));
}

#[test]
fn history_policies_default_bound_the_claim_and_name_their_keys() {
    let text = r#"
[models.local]
base_url = "http://127.0.0.1:18186/v1"
model = "qwen"
[models.big]
base_url = "http://127.0.0.1:18186/v1"
model = "qwen"
history_recent_steps = 20
history_budget_tokens = 0
history_max_steps = 200
[agents.support]
endpoint = "http://127.0.0.1:50071"
"#;
    let c = load(&with_file("history", text)).unwrap();
    let local = &c.models["local"];
    assert_eq!((local.history_recent_steps, local.history_budget_tokens, local.history_max_steps), (10, 4000, 50));
    assert_eq!(c.agents["support"].history_max_steps, 50);
    assert_eq!(c.history_window(), 200, "the largest of the endpoints' and agents' history_max_steps");
    assert_eq!(Config::default().history_window(), 0, "no model or agent: a claim reads no history");
    for (change, key) in [
        ("history_recent_steps = 20", "history_recent_steps = 0"),
        ("history_recent_steps = 20", "history_recent_steps = 201"),
        ("history_max_steps = 200", "history_max_steps = 1001"),
        ("history_max_steps = 200", "history_max_steps = 0"),
    ]
    .map(|(from, to)| (text.replace(from, to), to.split(' ').next().unwrap().to_string()))
    {
        let e = load(&with_file("history-bad", &change)).unwrap_err().to_string();
        assert!(e.starts_with(&format!("models.big.{key}:")), "{e}");
    }
    let e = load(&with_file("history-agent", &format!("{text}history_max_steps = 5000\n"))).unwrap_err().to_string();
    assert!(e.starts_with("agents.support.history_max_steps:") && e.contains("between 1 and 1000"), "{e}");
    let e = load(&with_file("history-typo", &text.replace("history_budget_tokens", "history_budget_token")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("history_budget_token"), "{e}");
}

#[test]
fn idempotency_keys_must_not_outlive_their_runs() {
    let with = |overrides: &[&str]| {
        load(&Sources { overrides: overrides.iter().map(|s| s.to_string()).collect(), ..Default::default() })
    };
    let e = with(&["runs.retention_secs=3600", "runs.idempotency_ttl_secs=7200"]).unwrap_err().to_string();
    assert!(e.starts_with("runs.idempotency_ttl_secs:") && e.contains("runs.retention_secs"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    let c = with(&["runs.retention_secs=3600", "runs.idempotency_ttl_secs=3600"]).unwrap();
    assert_eq!(c.runs.idempotency_ttl_secs, c.runs.retention_secs);
}
