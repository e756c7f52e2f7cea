//! Bad input, fuzzed with proptest: the task, event and checkpoint decoders and the RunSpec
//! validator never panic on anything; what admission accepts is within its limits and what it
//! refuses names the field. Bounded by `PROPTEST_CASES` (256 by default, as in CI);
//! `scripts/fuzz.sh` runs many more.
#![allow(clippy::unwrap_used)]

use baton_core::admission::{admit, Policy, MAX_LABELS};
use baton_core::catalog::Catalog;
use baton_core::v1::{
    planner, Budget, EventBatch, ModelPlanner, Planner, RunEvent, RunSpec, RunState, ScriptPlan, Task, ToolCall,
    VersionSet,
};
use proptest::prelude::*;
use prost::Message as _;

/// Any JSON text up to a few levels deep, or text that is not JSON at all.
fn args_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        ".{0,12}".prop_map(|s| serde_json::Value::String(s).to_string()),
    ];
    let json = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..6).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    });
    prop_oneof![json, ".{0,40}"]
}

fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![Just("echo".to_string()), Just("sleep".to_string()), Just("wait".to_string()), ".{0,10}"]
}

fn run_spec() -> impl Strategy<Value = RunSpec> {
    let script = prop::collection::vec((tool_name(), args_json()), 0..8).prop_map(|steps| {
        let steps = steps.into_iter().map(|(tool, args_json)| ToolCall { tool, args_json }).collect();
        planner::Kind::Script(ScriptPlan { steps })
    });
    let model = (".{0,8}", ".{0,40}", prop::option::of(-1.0f32..3.0)).prop_map(|(endpoint, system_prompt, t)| {
        planner::Kind::Model(ModelPlanner { endpoint, system_prompt, temperature: t })
    });
    let kind = prop::option::of(prop_oneof![script, model]);
    let labels = prop::collection::hash_map(".{0,70}", ".{0,300}", 0..(MAX_LABELS + 4));
    let budget =
        (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(steps, wall, tokens, cost)| Budget {
            max_steps: steps,
            max_wall_clock_ms: wall,
            max_tokens: tokens,
            max_cost_micros: cost,
            ..Default::default()
        });
    (
        ".{0,64}",
        kind,
        prop::collection::vec(tool_name(), 0..4),
        -2i32..6,
        prop::option::of(budget),
        prop_oneof![Just(String::new()), Just("main".to_string()), ".{0,8}"],
        labels,
        ".{0,200}",
    )
        .prop_map(|(goal, kind, allowed_tools, autonomy, budget, lane, labels, version)| RunSpec {
            goal,
            planner: kind.map(|kind| Planner { kind: Some(kind) }),
            allowed_tools,
            autonomy,
            budget,
            lane,
            labels: labels.into_iter().collect(),
            versions: Some(VersionSet { agent: version, ..Default::default() }),
            ..Default::default()
        })
}

proptest! {
    #[test]
    fn decoders_never_panic_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Task::decode(bytes.as_slice());
        let _ = RunEvent::decode(bytes.as_slice());
        let _ = EventBatch::decode(bytes.as_slice());
        let _ = RunState::decode(bytes.as_slice());
    }

    #[test]
    fn admission_accepts_only_bounded_specs_and_names_what_it_refuses(spec in run_spec()) {
        let policy = Policy { models: vec!["m".into()], ..Policy::default() };
        match admit("run", "tenant", "", spec.clone(), &policy, &Catalog::builtins(), 0) {
            Ok(state) => {
                prop_assert!(spec.goal.len() <= policy.max_goal_bytes);
                prop_assert!(spec.labels.len() <= MAX_LABELS);
                let budget = state.spec.as_ref().and_then(|s| s.budget).unwrap_or_default();
                prop_assert!(budget.max_steps <= policy.ceiling_max_steps);
                prop_assert!(budget.max_tokens <= policy.ceiling_max_tokens);
            }
            Err(e) => prop_assert!(e.field.starts_with("spec") && !e.message.is_empty(), "{e:?}"),
        }
    }

    #[test]
    fn arguments_of_any_shape_are_checked_without_panicking(args in args_json()) {
        let catalog = Catalog::builtins();
        for tool in ["echo", "sleep", "wait", "flaky"] {
            let _ = catalog.check_args(tool, &args);
        }
    }
}

#[test]
fn ten_thousand_labels_and_deep_json_are_refused_with_the_field_named() {
    let mut spec = baton_core::plan::script_spec(&[("echo", "{}")]);
    spec.labels = (0..10_000).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let e = admit("run", "tenant", "", spec, &Policy::default(), &Catalog::builtins(), 0).unwrap_err();
    assert_eq!(e.field, "spec.labels");
    assert!(e.message.contains("10000 labels"), "{e:?}");

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let spec = baton_core::plan::script_spec(&[("echo", &deep)]);
    let policy = Policy { max_args_bytes: 1024 * 1024, ..Policy::default() };
    let e = admit("run", "tenant", "", spec, &policy, &Catalog::builtins(), 0).unwrap_err();
    assert!(e.field.starts_with("spec.planner.script.steps[0]"), "{e:?}");
}
