//! The runtime decides: every proposal is judged before anything runs. In order: the tool is
//! allowed for the run, it exists, no operator disabled it, its arguments are valid against its
//! schema, the tenant's policy rules allow it, a planner is not repeating a `write` or
//! `external` call the run already executed (`duplicate_call`), the run's autonomy level lets
//! its side effect run, and it needs no person's approval (autonomy `executes_after_approval`, the manifest's
//! `requires_approval`, an operator switch). The verdict carries a reason code that is recorded
//! as an event.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::catalog::Catalog;
use crate::tools::ArgsError;
use crate::v1::{AutonomyLevel, RunState, ToolCall};

/// Reason codes of rejected and drafted proposals (recorded on events and step records).
pub mod code {
    /// The tool is not in the run's `allowed_tools`.
    pub const TOOL_NOT_ALLOWED: &str = "tool_not_allowed";
    /// No tool of that name exists in the catalog.
    pub const UNKNOWN_TOOL: &str = "unknown_tool";
    /// The arguments are not an object valid against the tool's schema.
    pub const INVALID_ARGS: &str = "invalid_args";
    /// A policy rule denies the tool for this tenant.
    pub const POLICY_DENIED: &str = "policy_denied";
    /// An argument is above the cap a policy rule sets.
    pub const POLICY_CAP: &str = "policy_cap";
    /// `advisory` runs record side effects as drafts and go on.
    pub const AUTONOMY_ADVISORY: &str = "autonomy_advisory";
    /// `drafts_for_review` runs end with the side effect as a draft for a human.
    pub const AUTONOMY_DRAFTS_FOR_REVIEW: &str = "autonomy_drafts_for_review";
    /// An operator disabled the tool.
    pub const TOOL_DISABLED: &str = "tool_disabled";
    /// The run already executed this exact `write` or `external` call (same tool, same
    /// canonical arguments) and the tool's manifest entry does not set `allow_repeats`.
    pub const DUPLICATE_CALL: &str = "duplicate_call";
}

/// Operator switches that bear on proposals, as every worker sees them within seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    /// Tools an operator disabled.
    pub disabled: BTreeSet<String>,
    /// Tools an operator made need approval.
    pub approval: BTreeSet<String>,
}

/// A tenant policy rule from config: deny a tool, or cap a numeric argument of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Tenant the rule applies to; `*` for every tenant.
    pub tenant: String,
    /// Tool the rule applies to.
    pub tool: String,
    /// What the rule does.
    pub effect: RuleEffect,
    /// Why, shown in the rejection.
    pub reason: String,
}

/// What a policy rule does to a matching proposal.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleEffect {
    /// Reject every call of the tool.
    Deny,
    /// Reject calls whose argument `arg` (a top-level name or a JSON pointer) exceeds `max`.
    Cap {
        /// Argument name, or JSON pointer such as `/order/amount`.
        arg: String,
        /// Highest value allowed.
        max: f64,
    },
}

/// The runtime's decision on a proposal.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run it, with these parsed arguments.
    Execute(Map<String, Value>),
    /// Do not run it; tell the planner why.
    Reject {
        /// One of [`code`].
        code: &'static str,
        /// What was wrong, for the planner and the operator.
        message: String,
    },
    /// Do not run it: record it as a draft (the autonomy level keeps side effects for humans).
    Draft {
        /// One of [`code`].
        code: &'static str,
        /// What happened, for the planner and the operator.
        message: String,
    },
    /// Run it once a person approves exactly this call.
    NeedsApproval {
        /// One of [`crate::approval::required_by`].
        required_by: &'static str,
    },
}

/// Judges `call`, proposed for step `state.next_step` of `state`.
pub fn judge(state: &RunState, call: &ToolCall, catalog: &Catalog, rules: &[Rule], gates: &Gates) -> Verdict {
    let no_spec = crate::v1::RunSpec::default();
    let spec = state.spec.as_ref().unwrap_or(&no_spec);
    if !spec.allowed_tools.contains(&call.tool) {
        let allowed = spec.allowed_tools.join(", ");
        if catalog.get(&call.tool).is_none() {
            let message = format!("there is no tool {:?} (this run's tools: {allowed})", call.tool);
            return Verdict::Reject { code: code::UNKNOWN_TOOL, message };
        }
        let message = format!("tool {:?} is not allowed for this run (allowed: {allowed})", call.tool);
        return Verdict::Reject { code: code::TOOL_NOT_ALLOWED, message };
    }
    if gates.disabled.contains(&call.tool) {
        let message = format!("tool {:?} is disabled by an operator; try another way", call.tool);
        return Verdict::Reject { code: code::TOOL_DISABLED, message };
    }
    let args = match catalog.check_args(&call.tool, &call.args_json) {
        Ok(args) => args,
        Err(e @ ArgsError::UnknownTool { .. }) => {
            return Verdict::Reject { code: code::UNKNOWN_TOOL, message: e.to_string() };
        }
        Err(e) => return Verdict::Reject { code: code::INVALID_ARGS, message: e.to_string() },
    };
    for rule in rules.iter().filter(|r| r.tool == call.tool && (r.tenant == "*" || r.tenant == state.tenant)) {
        match &rule.effect {
            RuleEffect::Deny => {
                let message =
                    format!("policy denies tool {:?} for tenant {:?}: {}", call.tool, state.tenant, rule.reason);
                return Verdict::Reject { code: code::POLICY_DENIED, message };
            }
            RuleEffect::Cap { arg, max } => {
                let value = if arg.starts_with('/') {
                    Value::Object(args.clone()).pointer(arg).cloned()
                } else {
                    args.get(arg).cloned()
                };
                if let Some(v) = value.as_ref().and_then(Value::as_f64).filter(|v| v > max) {
                    let message = format!(
                        "argument {arg} = {v} of tool {:?} is above the cap {max} for tenant {:?}: {}",
                        call.tool, state.tenant, rule.reason
                    );
                    return Verdict::Reject { code: code::POLICY_CAP, message };
                }
            }
        }
    }
    let effect = catalog.get(&call.tool).map(|t| t.def.side_effect);
    if let Some(message) = repeated(state, call, catalog) {
        return Verdict::Reject { code: code::DUPLICATE_CALL, message };
    }
    if effect.is_some_and(|e| e.has_effect()) {
        let class = effect.map_or("", |e| e.name());
        match spec.autonomy() {
            AutonomyLevel::Advisory => {
                let message = format!(
                    "not executed: {:?} is a {class} tool and this run is advisory; the call was recorded as a draft",
                    call.tool
                );
                return Verdict::Draft { code: code::AUTONOMY_ADVISORY, message };
            }
            AutonomyLevel::DraftsForReview => {
                let message = format!(
                    "not executed: {:?} is a {class} tool; the call was recorded as a draft for review",
                    call.tool
                );
                return Verdict::Draft { code: code::AUTONOMY_DRAFTS_FOR_REVIEW, message };
            }
            AutonomyLevel::ExecutesAfterApproval => {
                return Verdict::NeedsApproval { required_by: crate::approval::required_by::AUTONOMY };
            }
            _ => {}
        }
    }
    if catalog.get(&call.tool).is_some_and(|t| t.def.requires_approval) {
        return Verdict::NeedsApproval { required_by: crate::approval::required_by::TOOL };
    }
    if gates.approval.contains(&call.tool) {
        return Verdict::NeedsApproval { required_by: crate::approval::required_by::OPERATOR };
    }
    Verdict::Execute(args)
}

/// Why `call` is a repeat the run may not make, if it is: a planner proposing again a `write`
/// or `external` call the run already executed. A script's repeats are its author's.
fn repeated(state: &RunState, call: &ToolCall, catalog: &Catalog) -> Option<String> {
    let def = &catalog.get(&call.tool)?.def;
    if !def.refuses_repeats() || crate::plan::is_script(state) {
        return None;
    }
    let step = crate::repeats::made_at(state, call)?;
    Some(format!(
        "not executed: step {step} already made this exact call of {:?} (a {} tool, same arguments); \
         use its result, or change the arguments if another call is meant",
        call.tool,
        def.side_effect.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, Policy};
    use crate::plan::model_spec;

    fn run(tools: &[&str], autonomy: AutonomyLevel) -> RunState {
        let mut spec = model_spec("m", "g", tools);
        spec.autonomy = autonomy as i32;
        admit("r", "acme", "", spec, &Policy::for_tests(), &Catalog::builtins(), 0).unwrap()
    }

    fn call(tool: &str, args: &str) -> ToolCall {
        ToolCall { tool: tool.into(), args_json: args.into() }
    }

    fn code_of(v: Verdict) -> &'static str {
        match v {
            Verdict::Execute(_) => "execute",
            Verdict::Reject { code, .. } | Verdict::Draft { code, .. } => code,
            Verdict::NeedsApproval { required_by } => required_by,
        }
    }

    #[test]
    fn checks_run_in_order() {
        let c = Catalog::builtins();
        let s = run(&["echo", "sleep", "ledger"], AutonomyLevel::BoundedAutonomous);
        assert_eq!(code_of(judge(&s, &call("flaky", "{}"), &c, &[], &Gates::default())), code::TOOL_NOT_ALLOWED);
        assert_eq!(code_of(judge(&s, &call("launch_missiles", "{}"), &c, &[], &Gates::default())), code::UNKNOWN_TOOL);
        assert_eq!(code_of(judge(&s, &call("sleep", r#"{"ms":"x"}"#), &c, &[], &Gates::default())), code::INVALID_ARGS);
        assert_eq!(code_of(judge(&s, &call("sleep", "[]"), &c, &[], &Gates::default())), code::INVALID_ARGS);
        assert_eq!(code_of(judge(&s, &call("ledger", "{}"), &c, &[], &Gates::default())), "execute");
        let mut s2 = s.clone();
        s2.spec.as_mut().unwrap().allowed_tools.push("gone".into());
        assert_eq!(code_of(judge(&s2, &call("gone", "{}"), &c, &[], &Gates::default())), code::UNKNOWN_TOOL);
    }

    #[test]
    fn policy_rules_deny_and_cap() {
        let c = Catalog::builtins();
        let s = run(&["echo", "sleep"], AutonomyLevel::BoundedAutonomous);
        let deny = Rule { tenant: "acme".into(), tool: "echo".into(), effect: RuleEffect::Deny, reason: "no".into() };
        let other = Rule { tenant: "beta".into(), ..deny.clone() };
        assert_eq!(code_of(judge(&s, &call("echo", "{}"), &c, &[deny], &Gates::default())), code::POLICY_DENIED);
        assert_eq!(code_of(judge(&s, &call("echo", "{}"), &c, &[other], &Gates::default())), "execute");
        let cap = Rule {
            tenant: "*".into(),
            tool: "sleep".into(),
            effect: RuleEffect::Cap { arg: "ms".into(), max: 100.0 },
            reason: "short naps only".into(),
        };
        let v = judge(&s, &call("sleep", r#"{"ms":101}"#), &c, std::slice::from_ref(&cap), &Gates::default());
        let Verdict::Reject { code, message } = v else { panic!("{v:?}") };
        assert_eq!(code, code::POLICY_CAP);
        assert!(message.contains("ms = 101") && message.contains("cap 100"), "{message}");
        assert_eq!(code_of(judge(&s, &call("sleep", r#"{"ms":100}"#), &c, &[cap], &Gates::default())), "execute");
        let nested = Rule {
            effect: RuleEffect::Cap { arg: "/order/amount".into(), max: 5.0 },
            tool: "echo".into(),
            ..any_deny()
        };
        assert_eq!(
            code_of(judge(&s, &call("echo", r#"{"order":{"amount":6}}"#), &c, &[nested], &Gates::default())),
            code::POLICY_CAP
        );
    }

    #[test]
    fn operator_switches_disable_and_require_approval() {
        let c = Catalog::builtins();
        let s = run(&["echo", "ledger"], AutonomyLevel::BoundedAutonomous);
        let gates = Gates { disabled: ["echo".to_string()].into(), approval: ["ledger".to_string()].into() };
        assert_eq!(code_of(judge(&s, &call("echo", "{}"), &c, &[], &gates)), code::TOOL_DISABLED);
        assert_eq!(code_of(judge(&s, &call("ledger", "{}"), &c, &[], &gates)), "operator");
        assert_eq!(code_of(judge(&s, &call("ledger", "{}"), &c, &[], &Gates::default())), "execute");
    }

    #[test]
    fn a_planner_may_not_repeat_an_executed_write() {
        let c = Catalog::builtins();
        let mut s = run(&["echo", "ledger"], AutonomyLevel::BoundedAutonomous);
        let ledger = call("ledger", r#"{"amount":20,"order":"B7"}"#);
        assert_eq!(code_of(judge(&s, &ledger, &c, &[], &Gates::default())), "execute");
        s.next_step = 2;
        crate::repeats::remember(&mut s, &ledger);
        let reordered = call("ledger", "{\"order\": \"B7\", \"amount\": 20}");
        let v = judge(&s, &reordered, &c, &[], &Gates::default());
        let Verdict::Reject { code, message } = v else { panic!("{v:?}") };
        assert_eq!(code, code::DUPLICATE_CALL);
        assert!(message.contains("step 2 already made this exact call"), "{message}");
        let other = call("ledger", r#"{"amount":21,"order":"B7"}"#);
        assert_eq!(code_of(judge(&s, &other, &c, &[], &Gates::default())), "execute");
        crate::repeats::remember(&mut s, &call("echo", "{}"));
        assert_eq!(code_of(judge(&s, &call("echo", "{}"), &c, &[], &Gates::default())), "execute", "reads repeat");
    }

    #[test]
    fn the_manifest_can_allow_repeats() {
        let mut def = Catalog::builtins().get("ledger").unwrap().def.clone();
        def.name = "tally".into();
        def.adapter = crate::catalog::Adapter::Http(crate::catalog::HttpAdapter {
            url: "http://127.0.0.1:1/tally".into(),
            method: "POST".into(),
            headers: Vec::new(),
            timeout_ms: 1000,
            max_response_bytes: 1024,
        });
        let strict = Catalog::new(vec![def.clone()], "v1").unwrap();
        def.allow_repeats = true;
        let lenient = Catalog::new(vec![def], "v2").unwrap();
        let mut s = admit("r", "acme", "", model_spec("m", "g", &["tally"]), &Policy::for_tests(), &strict, 0).unwrap();
        let tally = call("tally", r#"{"n":1}"#);
        crate::repeats::remember(&mut s, &tally);
        assert_eq!(code_of(judge(&s, &tally, &strict, &[], &Gates::default())), code::DUPLICATE_CALL);
        assert_eq!(code_of(judge(&s, &tally, &lenient, &[], &Gates::default())), "execute");
    }

    fn any_deny() -> Rule {
        Rule { tenant: "*".into(), tool: "echo".into(), effect: RuleEffect::Deny, reason: String::new() }
    }

    #[test]
    fn autonomy_keeps_side_effects_as_drafts() {
        let c = Catalog::builtins();
        for (level, expected) in [
            (AutonomyLevel::Advisory, code::AUTONOMY_ADVISORY),
            (AutonomyLevel::DraftsForReview, code::AUTONOMY_DRAFTS_FOR_REVIEW),
            (AutonomyLevel::BoundedAutonomous, "execute"),
            (AutonomyLevel::Unspecified, "execute"),
            (AutonomyLevel::ExecutesAfterApproval, "autonomy"),
        ] {
            let s = run(&["echo", "ledger"], level);
            assert_eq!(code_of(judge(&s, &call("ledger", "{}"), &c, &[], &Gates::default())), expected, "{level:?}");
            assert_eq!(
                code_of(judge(&s, &call("echo", "{}"), &c, &[], &Gates::default())),
                "execute",
                "reads run at {level:?}"
            );
        }
    }
}
