//! The alert rules (`charts/baton/alerts/`): valid for promtool, every alert unit-tested firing
//! and quiet (`promtool test rules`), and every `runbook_url` pointing at a section that exists
//! in docs/runbook.md.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_testkit::find_executable;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn promtool(args: &[&str]) -> (bool, String) {
    let promtool = find_executable("promtool").expect("promtool not found: run scripts/install-deps.sh");
    let out = Command::new(promtool).args(args).current_dir(repo().join("charts/baton/alerts")).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn alert_rules_are_valid_and_their_unit_tests_pass() {
    let (ok, out) = promtool(&["check", "rules", "baton.rules.yaml"]);
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["test", "rules", "baton.rules.test.yaml"]);
    assert!(ok, "{out}");
}

#[test]
fn every_alert_is_tested_and_links_an_existing_runbook_section() {
    let rules = std::fs::read_to_string(repo().join("charts/baton/alerts/baton.rules.yaml")).unwrap();
    let tests = std::fs::read_to_string(repo().join("charts/baton/alerts/baton.rules.test.yaml")).unwrap();
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let anchors: Vec<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .collect::<String>()
                .replace(' ', "-")
        })
        .collect();
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in &alerts {
        assert!(tests.contains(&format!("alertname: {alert}")), "{alert} has no unit test");
    }
    for url in rules.lines().filter_map(|l| l.trim().strip_prefix("runbook_url: ")) {
        let anchor = url.split_once('#').map(|(_, a)| a).unwrap_or_default();
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{url}: no section `### …` with anchor {anchor} in docs/runbook.md ({anchors:?})"
        );
    }
}
