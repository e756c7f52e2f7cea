//! Bad input, fuzzed with proptest: the tool manifest parser never panics on any text, and a
//! manifest it refuses says which key is wrong. Bounded by `PROPTEST_CASES` (256 by default,
//! as in CI); `scripts/fuzz.sh` runs many more.
#![allow(clippy::unwrap_used)]

use baton_config::manifest::parse_manifest;
use proptest::prelude::*;

/// One `[tools.<name>]` entry with each field present or not, and plausible or wrong values.
fn entry() -> impl Strategy<Value = String> {
    let field = |key: &'static str, values: Vec<&'static str>| {
        prop::option::of(prop::sample::select(values)).prop_map(move |v| v.map(|v| format!("{key} = {v}\n")))
    };
    (
        "[a-z_]{1,10}",
        field("description", vec!["\"d\"", "1", "\"\""]),
        field("kind", vec!["\"http\"", "\"grpc\"", "\"ftp\"", "true"]),
        field("side_effect", vec!["\"none\"", "\"read\"", "\"write\"", "\"external\"", "\"maybe\""]),
        field("url", vec!["\"http://127.0.0.1:1/x\"", "\"not a url\"", "\"\""]),
        field("endpoint", vec!["\"http://127.0.0.1:2\"", "\"::\""]),
        field("timeout_ms", vec!["0", "100", "-1", "99999999999"]),
        field("method", vec!["\"POST\"", "\"GET\"", "\"BREW\""]),
        field("args_schema", vec!["{ type = \"object\" }", "{ type = 7 }", "{ minimum = \"x\" }", "\"schema\"", "{}"]),
        field("secret_headers", vec!["{ A = { env = \"X\" } }", "{ A = { env = \"\" } }", "{ A = 1 }"]),
    )
        .prop_map(|(name, a, b, c, d, e, f, g, h, i)| {
            let fields: String = [a, b, c, d, e, f, g, h, i].into_iter().flatten().collect();
            format!("[tools.{name}]\n{fields}")
        })
}

proptest! {
    #[test]
    fn any_text_is_parsed_or_refused_without_panicking(text in ".{0,400}") {
        let _ = parse_manifest(&text);
    }

    #[test]
    fn a_refused_manifest_names_the_offending_key(entries in prop::collection::vec(entry(), 1..4)) {
        let text = entries.join("\n");
        if let Err(e) = parse_manifest(&text) {
            let message = e.to_string();
            prop_assert!(message.contains("tools") || message.contains("manifest"), "{message}\n{text}");
        }
    }
}
