//! Admission: validating a submitted `RunSpec` at the edge and turning it into the first checkpoint.

use std::collections::BTreeSet;

use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::plan::script_steps;
use crate::tools::ArgsError;
use crate::v1::{planner, AutonomyLevel, Budget, RetryPolicy, RunSpec, RunState, RunStatus, Usage};
use crate::SCHEMA_VERSION;

/// Sizes and ceilings the gateway enforces, and the defaults it fills in. Built from config.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Lanes that have workers; a run naming another lane is refused.
    pub lanes: Vec<String>,
    /// Most steps a script plan may list.
    pub max_plan_steps: u32,
    /// Largest `args_json` of one tool call, in bytes.
    pub max_args_bytes: usize,
    /// Largest goal text, in bytes.
    pub max_goal_bytes: usize,
    /// `max_steps` when the spec leaves it 0.
    pub default_max_steps: u32,
    /// Highest `max_steps` a spec may ask for.
    pub ceiling_max_steps: u32,
    /// Wall-clock budget when the spec leaves it 0.
    pub default_wall_clock_ms: u64,
    /// Highest wall-clock budget a spec may ask for.
    pub ceiling_wall_clock_ms: u64,
    /// Attempts per step when the spec leaves it 0.
    pub default_max_attempts: u32,
    /// Highest attempts per step a spec may ask for.
    pub ceiling_max_attempts: u32,
    /// First retry back-off when the spec leaves it 0.
    pub default_initial_backoff_ms: u64,
    /// Back-off cap when the spec leaves it 0.
    pub default_max_backoff_ms: u64,
    /// Model endpoints a `model` planner may name (`[models.<name>]`).
    pub models: Vec<String>,
    /// Agents a `grpc` planner may name (`[agents.<name>]`).
    pub agents: Vec<String>,
    /// Largest system prompt, in bytes.
    pub max_system_prompt_bytes: usize,
    /// Token budget when the spec leaves it 0.
    pub default_max_tokens: u64,
    /// Highest token budget a spec may ask for.
    pub ceiling_max_tokens: u64,
    /// Cost budget (micros) when the spec leaves it 0.
    pub default_max_cost_micros: u64,
    /// Highest cost budget a spec may ask for.
    pub ceiling_max_cost_micros: u64,
    /// Tool-call budget when the spec leaves it 0 (a script gets at least its length).
    pub default_max_tool_calls: u32,
    /// Rejections fed back to a planner when the spec leaves it 0.
    pub default_max_rejections: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            lanes: vec!["main".into()],
            max_plan_steps: 10_000,
            max_args_bytes: 64 * 1024,
            max_goal_bytes: 16 * 1024,
            default_max_steps: 100,
            ceiling_max_steps: 10_000,
            default_wall_clock_ms: 60 * 60 * 1000,
            ceiling_wall_clock_ms: 7 * 24 * 60 * 60 * 1000,
            default_max_attempts: 3,
            ceiling_max_attempts: 20,
            default_initial_backoff_ms: 1_000,
            default_max_backoff_ms: 10 * 60 * 1000,
            models: Vec::new(),
            agents: Vec::new(),
            max_system_prompt_bytes: 32 * 1024,
            default_max_tokens: 200_000,
            ceiling_max_tokens: 100_000_000,
            default_max_cost_micros: 5_000_000,
            ceiling_max_cost_micros: 10_000_000_000,
            default_max_tool_calls: 100,
            default_max_rejections: 5,
        }
    }
}

impl Policy {
    /// The default policy with a model endpoint `m` and an agent `a`, for tests.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self { models: vec!["m".into()], agents: vec!["a".into()], ..Self::default() }
    }
}

/// A spec refused at the edge: which field, and why. Maps to gRPC INVALID_ARGUMENT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// Path of the offending field, e.g. `spec.planner.script.steps[2].tool`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Most labels a run may carry.
pub const MAX_LABELS: usize = 64;
/// Longest label key, bytes.
pub const MAX_LABEL_KEY_BYTES: usize = 63;
/// Longest label value, bytes.
pub const MAX_LABEL_VALUE_BYTES: usize = 256;
/// Most entries in `allowed_tools`.
pub const MAX_ALLOWED_TOOLS: usize = 256;
/// Longest field of the version set, bytes.
pub const MAX_VERSION_BYTES: usize = 128;

fn err(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError { field: field.into(), message: message.into() }
}

/// Bounds on what a spec may carry besides its plan: labels, allowed tools, the version set.
fn check_sizes(spec: &RunSpec) -> Result<(), SpecError> {
    if spec.labels.len() > MAX_LABELS {
        return Err(err("spec.labels", format!("has {} labels, the limit is {MAX_LABELS}", spec.labels.len())));
    }
    for (key, value) in &spec.labels {
        let shown: String = key.chars().take(40).collect();
        if key.is_empty() || key.len() > MAX_LABEL_KEY_BYTES {
            return Err(err(
                format!("spec.labels[{shown:?}]"),
                format!("key must be 1 to {MAX_LABEL_KEY_BYTES} bytes"),
            ));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(err(format!("spec.labels[{shown:?}]"), format!("value is over {MAX_LABEL_VALUE_BYTES} bytes")));
        }
    }
    if spec.allowed_tools.len() > MAX_ALLOWED_TOOLS {
        let n = spec.allowed_tools.len();
        return Err(err("spec.allowed_tools", format!("has {n} entries, the limit is {MAX_ALLOWED_TOOLS}")));
    }
    if let Some(v) = &spec.versions {
        let fields = [
            ("agent", &v.agent),
            ("model", &v.model),
            ("prompt", &v.prompt),
            ("policy", &v.policy),
            ("tool_schema", &v.tool_schema),
            ("baton_build", &v.baton_build),
        ];
        for (name, value) in fields {
            if value.len() > MAX_VERSION_BYTES {
                return Err(err(format!("spec.versions.{name}"), format!("is over {MAX_VERSION_BYTES} bytes")));
            }
        }
    }
    Ok(())
}

/// Checks a spec against the policy and the tool catalog without building anything.
pub fn validate(spec: &RunSpec, policy: &Policy, catalog: &Catalog) -> Result<(), SpecError> {
    if spec.goal.len() > policy.max_goal_bytes {
        return Err(err("spec.goal", format!("is {} bytes, the limit is {}", spec.goal.len(), policy.max_goal_bytes)));
    }
    check_sizes(spec)?;
    // An empty lane is routed by the gateway (by weight) before admission.
    let lane = effective_lane(spec);
    if !spec.lane.is_empty() && !policy.lanes.iter().any(|l| l == lane) {
        return Err(err("spec.lane", format!("unknown lane {lane:?} (lanes: {})", policy.lanes.join(", "))));
    }
    if AutonomyLevel::try_from(spec.autonomy).is_err() {
        return Err(err("spec.autonomy", format!("{} is not an AutonomyLevel", spec.autonomy)));
    }
    for (i, tool) in spec.allowed_tools.iter().enumerate() {
        if catalog.get(tool).is_none() {
            let e = ArgsError::UnknownTool { name: tool.clone(), known: catalog.known() };
            return Err(err(format!("spec.allowed_tools[{i}]"), e.to_string()));
        }
    }
    match crate::plan::kind(spec) {
        Some(planner::Kind::Script(script)) => validate_script(spec, &script.steps, policy, catalog)?,
        Some(planner::Kind::Model(model)) => {
            if !policy.models.contains(&model.endpoint) {
                return Err(err(
                    "spec.planner.model.endpoint",
                    format!("unknown model endpoint {:?} (configured: {})", model.endpoint, names(&policy.models)),
                ));
            }
            if model.system_prompt.len() > policy.max_system_prompt_bytes {
                return Err(err(
                    "spec.planner.model.system_prompt",
                    format!("is {} bytes, the limit is {}", model.system_prompt.len(), policy.max_system_prompt_bytes),
                ));
            }
            if let Some(t) = model.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
                return Err(err("spec.planner.model.temperature", format!("{t} is outside 0..=2")));
            }
            if spec.goal.trim().is_empty() {
                return Err(err("spec.goal", "is required for a model planner: it is what the model works on"));
            }
        }
        Some(planner::Kind::Grpc(agent)) => {
            if !policy.agents.contains(&agent.agent) {
                return Err(err(
                    "spec.planner.grpc.agent",
                    format!("unknown agent {:?} (configured: {})", agent.agent, names(&policy.agents)),
                ));
            }
        }
        None => return Err(err("spec.planner", "is required (supported: script, model, grpc)")),
    }
    effective_budget(spec, policy)?;
    effective_retry(spec.retry.as_ref(), policy)?;
    Ok(())
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

fn validate_script(
    spec: &RunSpec,
    steps: &[crate::v1::ToolCall],
    policy: &Policy,
    catalog: &Catalog,
) -> Result<(), SpecError> {
    if steps.is_empty() {
        return Err(err("spec.planner.script.steps", "is empty: a script plan needs at least one step"));
    }
    if steps.len() > policy.max_plan_steps as usize {
        return Err(err(
            "spec.planner.script.steps",
            format!("has {} steps, the limit is {}", steps.len(), policy.max_plan_steps),
        ));
    }
    for (i, call) in steps.iter().enumerate() {
        let field = format!("spec.planner.script.steps[{i}]");
        if call.args_json.len() > policy.max_args_bytes {
            return Err(err(
                format!("{field}.args_json"),
                format!("is {} bytes, the limit is {}", call.args_json.len(), policy.max_args_bytes),
            ));
        }
        if !spec.allowed_tools.is_empty() && !spec.allowed_tools.contains(&call.tool) {
            return Err(err(format!("{field}.tool"), format!("{:?} is not in spec.allowed_tools", call.tool)));
        }
        catalog.check_args(&call.tool, &call.args_json).map(drop).map_err(|e| match e {
            ArgsError::UnknownTool { .. } => err(format!("{field}.tool"), e.to_string()),
            _ => err(format!("{field}.args_json"), e.to_string()),
        })?;
    }
    Ok(())
}

/// Validates `spec` and builds the run's first checkpoint (status `queued`, step 0).
pub fn admit(
    run_id: &str,
    tenant: &str,
    idempotency_key: &str,
    spec: RunSpec,
    policy: &Policy,
    catalog: &Catalog,
    now_ms: i64,
) -> Result<RunState, SpecError> {
    validate(&spec, policy, catalog)?;
    let budget = effective_budget(&spec, policy)?;
    let retry = effective_retry(spec.retry.as_ref(), policy)?;
    let mut spec = spec;
    if spec.allowed_tools.is_empty() {
        spec.allowed_tools = script_tools(&spec);
    }
    let lane = effective_lane(&spec).to_string();
    Ok(RunState {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.to_string(),
        tenant: tenant.to_string(),
        idempotency_key: idempotency_key.to_string(),
        status: RunStatus::Queued as i32,
        next_step: 0,
        attempt: 0,
        steps: Vec::new(),
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        deadline_at_ms: now_ms.saturating_add(budget.max_wall_clock_ms as i64),
        stop_reason: None,
        budget: Some(budget),
        retry: Some(retry),
        lane,
        event_seq: 0,
        last_error: String::new(),
        wake_at_ms: 0,
        wait_reason: String::new(),
        pending: None,
        usage: Some(Usage::default()),
        result: String::new(),
        traceparent: String::new(),
        made_calls: Vec::new(),
        spec: Some(spec),
    })
}

/// Stable fingerprint of a submitted spec: a reused idempotency key must come with the same spec.
pub fn fingerprint(spec: &RunSpec) -> String {
    let digest = Sha256::digest(spec.encode_to_vec());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn effective_lane(spec: &RunSpec) -> &str {
    if spec.lane.is_empty() {
        "main"
    } else {
        &spec.lane
    }
}

fn script_tools(spec: &RunSpec) -> Vec<String> {
    let names: BTreeSet<&String> = script_steps(spec).iter().map(|c| &c.tool).collect();
    names.into_iter().cloned().collect()
}

/// The spec's budget with defaults filled in: an unset step or tool-call budget is the policy
/// default, or the script's length if that is longer (a fixed plan's length is its own bound).
fn effective_budget(spec: &RunSpec, policy: &Policy) -> Result<Budget, SpecError> {
    let b = spec.budget.unwrap_or_default();
    let plan_len = script_steps(spec).len() as u32;
    let or = |v: u64, d: u64| if v == 0 { d } else { v };
    let max_steps = or(b.max_steps.into(), policy.default_max_steps.max(plan_len).into()) as u32;
    let wall = or(b.max_wall_clock_ms, policy.default_wall_clock_ms);
    let tokens = or(b.max_tokens, policy.default_max_tokens);
    let cost = or(b.max_cost_micros, policy.default_max_cost_micros);
    let ceilings = [
        ("spec.budget.max_steps", u64::from(max_steps), u64::from(policy.ceiling_max_steps)),
        ("spec.budget.max_wall_clock_ms", wall, policy.ceiling_wall_clock_ms),
        ("spec.budget.max_tokens", tokens, policy.ceiling_max_tokens),
        ("spec.budget.max_cost_micros", cost, policy.ceiling_max_cost_micros),
        ("spec.budget.max_tool_calls", b.max_tool_calls.into(), policy.ceiling_max_steps.into()),
        ("spec.budget.max_rejections", b.max_rejections.into(), policy.ceiling_max_steps.into()),
    ];
    for (field, value, ceiling) in ceilings {
        if value > ceiling {
            return Err(err(field, format!("{value} exceeds the ceiling {ceiling}")));
        }
    }
    Ok(Budget {
        max_steps,
        max_wall_clock_ms: wall,
        max_tokens: tokens,
        max_cost_micros: cost,
        max_tool_calls: or(b.max_tool_calls.into(), policy.default_max_tool_calls.max(plan_len).into()) as u32,
        max_rejections: or(b.max_rejections.into(), policy.default_max_rejections.into()) as u32,
    })
}

fn effective_retry(retry: Option<&RetryPolicy>, policy: &Policy) -> Result<RetryPolicy, SpecError> {
    let r = retry.cloned().unwrap_or_default();
    let max_attempts = if r.max_attempts == 0 { policy.default_max_attempts } else { r.max_attempts };
    if max_attempts > policy.ceiling_max_attempts {
        return Err(err(
            "spec.retry.max_attempts",
            format!("{max_attempts} exceeds the ceiling {}", policy.ceiling_max_attempts),
        ));
    }
    let initial = if r.initial_backoff_ms == 0 { policy.default_initial_backoff_ms } else { r.initial_backoff_ms };
    let max = if r.max_backoff_ms == 0 { policy.default_max_backoff_ms } else { r.max_backoff_ms };
    if initial > max {
        return Err(err("spec.retry.initial_backoff_ms", format!("{initial} is above max_backoff_ms {max}")));
    }
    Ok(RetryPolicy { max_attempts, initial_backoff_ms: initial, max_backoff_ms: max })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{agent_spec, model_spec, script_spec};

    fn cat() -> Catalog {
        Catalog::builtins()
    }

    fn spec(steps: &[(&str, &str)]) -> RunSpec {
        RunSpec { goal: "test".into(), ..script_spec(steps) }
    }

    #[test]
    fn admits_with_defaults() {
        let p = Policy::default();
        let s = admit("r1", "t", "k", spec(&[("echo", "{}"), ("sleep", r#"{"ms":1}"#)]), &p, &cat(), 1_000).unwrap();
        assert_eq!(s.status(), RunStatus::Queued);
        assert_eq!(s.next_step, 0);
        assert_eq!(s.lane, "main");
        assert_eq!(s.budget.as_ref().unwrap().max_steps, p.default_max_steps);
        assert_eq!(s.deadline_at_ms, 1_000 + p.default_wall_clock_ms as i64);
        assert_eq!(s.spec.unwrap().allowed_tools, vec!["echo".to_string(), "sleep".to_string()]);
    }

    #[test]
    fn a_long_script_gets_a_step_budget_that_fits_it() {
        let steps = vec![("echo", "{}"); 250];
        let s = admit("r", "t", "", spec(&steps), &Policy::default(), &cat(), 0).unwrap();
        assert_eq!(s.budget.unwrap().max_steps, 250);
    }

    #[test]
    fn empty_plan_names_the_field() {
        let e = validate(&spec(&[]), &Policy::default(), &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner.script.steps");
        assert!(e.message.contains("empty"));
    }

    #[test]
    fn missing_planner_is_refused() {
        let e = validate(&RunSpec::default(), &Policy::default(), &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner");
    }

    #[test]
    fn unknown_tool_names_the_step() {
        let e = validate(&spec(&[("echo", "{}"), ("shell", "{}")]), &Policy::default(), &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner.script.steps[1].tool");
        assert!(e.message.contains("\"shell\""));
    }

    #[test]
    fn tool_outside_allowed_tools_is_refused() {
        let mut s = spec(&[("sleep", r#"{"ms":1}"#)]);
        s.allowed_tools = vec!["echo".into()];
        let e = validate(&s, &Policy::default(), &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner.script.steps[0].tool");
    }

    #[test]
    fn bad_args_name_args_json() {
        let e = validate(&spec(&[("sleep", r#"{"ms":"x"}"#)]), &Policy::default(), &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner.script.steps[0].args_json");
    }

    #[test]
    fn limits_are_enforced() {
        let p = Policy { max_plan_steps: 2, max_args_bytes: 10, ..Policy::default() };
        assert!(validate(&spec(&[("echo", "{}"); 3]), &p, &cat()).unwrap_err().message.contains("limit is 2"));
        let e = validate(&spec(&[("echo", r#"{"long":"aaaaaaa"}"#)]), &p, &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner.script.steps[0].args_json");
    }

    #[test]
    fn ceilings_are_enforced() {
        let mut s = spec(&[("echo", "{}")]);
        s.budget = Some(Budget { max_steps: 1_000_000, ..Default::default() });
        assert_eq!(validate(&s, &Policy::default(), &cat()).unwrap_err().field, "spec.budget.max_steps");
        s.budget = None;
        s.retry = Some(RetryPolicy { max_attempts: 99, ..Default::default() });
        assert_eq!(validate(&s, &Policy::default(), &cat()).unwrap_err().field, "spec.retry.max_attempts");
    }

    #[test]
    fn unknown_lane_is_refused() {
        let mut s = spec(&[("echo", "{}")]);
        s.lane = "canary".into();
        assert_eq!(validate(&s, &Policy::default(), &cat()).unwrap_err().field, "spec.lane");
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        let a = spec(&[("echo", "{}")]);
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.labels.insert("x".into(), "y".into());
        b.labels.insert("a".into(), "b".into());
        assert_ne!(fingerprint(&a), fingerprint(&b));
        let mut c = a.clone();
        c.labels.insert("a".into(), "b".into());
        c.labels.insert("x".into(), "y".into());
        assert_eq!(fingerprint(&b), fingerprint(&c));
    }

    #[test]
    fn planners_must_name_configured_endpoints() {
        let p = Policy::for_tests();
        assert!(validate(&model_spec("m", "g", &["echo"]), &p, &cat()).is_ok());
        let e = validate(&model_spec("gpt", "g", &["echo"]), &p, &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner.model.endpoint");
        assert!(e.message.contains("\"gpt\"") && e.message.contains("configured: m"), "{e}");
        let e = validate(&agent_spec("nope", "g", &[]), &p, &cat()).unwrap_err();
        assert_eq!(e.field, "spec.planner.grpc.agent");
        let e = validate(&model_spec("m", "g", &["echo", "launch"]), &p, &cat()).unwrap_err();
        assert_eq!(e.field, "spec.allowed_tools[1]");
        assert!(e.message.contains("\"launch\""), "{e}");
        let e = validate(&model_spec("m", " ", &[]), &p, &cat()).unwrap_err();
        assert_eq!(e.field, "spec.goal");
    }

    #[test]
    fn model_runs_get_spend_budgets() {
        let p = Policy::for_tests();
        let s = admit("r", "t", "", model_spec("m", "g", &["echo"]), &p, &cat(), 0).unwrap();
        let b = s.budget.unwrap();
        assert_eq!((b.max_tokens, b.max_cost_micros), (p.default_max_tokens, p.default_max_cost_micros));
        assert_eq!((b.max_tool_calls, b.max_rejections), (p.default_max_tool_calls, p.default_max_rejections));
        assert_eq!(s.spec.unwrap().allowed_tools, vec!["echo".to_string()], "a model run keeps exactly its tools");
        let mut spec = model_spec("m", "g", &[]);
        spec.budget = Some(Budget { max_tokens: u64::MAX, ..Default::default() });
        assert_eq!(validate(&spec, &p, &cat()).unwrap_err().field, "spec.budget.max_tokens");
    }
}
