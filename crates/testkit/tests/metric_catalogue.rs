//! docs/metrics.md describes exactly the metrics the crates define (`src/metric_definitions.rs`):
//! no metric without a row, no row without a metric. Names follow the conventions promtool and
//! the catalogue state: `baton_` prefix, `_total` counters, base units.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Every `"baton_…"` string in a `metric_definitions.rs` under crates/ and services/.
fn defined() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for top in ["crates", "services"] {
        for entry in std::fs::read_dir(repo().join(top)).unwrap() {
            let file = entry.unwrap().path().join("src/metric_definitions.rs");
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            for line in text.lines().filter(|l| l.trim_start().starts_with("pub const")) {
                if let Some(name) = line.split('"').nth(1).filter(|n| n.starts_with("baton_")) {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

/// Every backticked `baton_…` name in the first column of docs/metrics.md's table.
fn documented() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("| `baton_")) {
        let first = line.split('|').nth(1).unwrap();
        names.extend(first.split('`').filter(|s| s.starts_with("baton_")).map(str::to_string));
    }
    names
}

#[test]
fn the_catalogue_matches_the_definitions() {
    let (defined, documented) = (defined(), documented());
    assert!(defined.len() >= 40, "{defined:?}");
    let undocumented: Vec<_> = defined.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&defined).collect();
    assert!(undocumented.is_empty(), "defined but not in docs/metrics.md: {undocumented:?}");
    assert!(stale.is_empty(), "in docs/metrics.md but defined nowhere: {stale:?}");
}

#[test]
fn names_follow_the_conventions() {
    let text = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    for line in text.lines().filter(|l| l.starts_with("| `baton_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let kind = cells[2];
        for name in cells[1].split('`').filter(|s| s.starts_with("baton_")) {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name}: counters, and only counters, end in _total"
            );
            assert!(!name.contains("_ms") && !name.contains("milliseconds"), "{name}: use base units (seconds)");
        }
    }
}
