//! Parsing tests of the command line, including every `batonctl` command the docs show.

use clap::{CommandFactory as _, Parser as _};

use super::*;

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

/// Splits a documented command line into words (quotes group, as in a shell) and fills in the
/// placeholders the docs use (RUN, TOOL, LANE, TENANT, N, JSON, …).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut word, mut quote) = (String::new(), None::<char>);
    for c in line.chars() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (' ', None) => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    out.push(word);
    out.into_iter()
        .map(|w| match w.as_str() {
            "RUN" | "<run-id>" => "r1".to_string(),
            "TOOL" => "echo".into(),
            "LANE" => "main".into(),
            "TENANT" | "A" => "acme".into(),
            "N" => "5".into(),
            "JSON" => "{}".into(),
            "R" | "…" => "why".into(),
            other => other.replace('…', "why"),
        })
        .collect()
}

#[test]
fn every_command_the_docs_show_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut checked = 0;
    for doc in ["docs/runbook.md", "docs/gates.md", "docs/operations.md", "docs/security.md", "README.md"] {
        // Shell line continuations join their lines.
        let text = std::fs::read_to_string(root.join(doc)).unwrap().replace("\\\n", " ");
        let inline = text.split('`').skip(1).step_by(2).map(|s| s.replace('\n', " "));
        let blocks = text.lines().map(|l| l.trim().trim_start_matches("$B/").to_string());
        for command in inline.chain(blocks) {
            let command = command.split(" # ").next().unwrap_or_default().trim().to_string();
            let Some(rest) = command.strip_prefix("batonctl ") else { continue };
            if rest.contains('|') {
                continue; // a line naming alternatives, not one command
            }
            let argv: Vec<String> = std::iter::once("batonctl".to_string()).chain(words(rest)).collect();
            if let Err(e) = Cli::try_parse_from(&argv) {
                panic!("{doc}: `{command}` does not parse: {e}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} commands found in the docs");
}

#[test]
fn steps_keep_their_order() {
    let cli =
        Cli::try_parse_from(["batonctl", "submit", "--step", "echo", "--step", r#"sleep:{"ms":5}"#]).expect("parses");
    let Command::Submit(args) = cli.command else { panic!("not submit") };
    let tools: Vec<&str> = args.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(tools, ["echo", "sleep"]);
    assert_eq!(args.steps[1].args_json, r#"{"ms":5}"#);
}

#[test]
fn dlq_list_flags() {
    let cli = Cli::try_parse_from(["batonctl", "dlq", "list", "--tenant-filter", "acme", "--limit", "5", "--json"])
        .expect("parses");
    assert!(cli.json);
    let Command::Dlq { command: DlqCommand::List(args) } = cli.command else { panic!("not dlq list") };
    assert_eq!((args.tenant_filter.as_str(), args.limit), ("acme", 5));
    let cli = Cli::try_parse_from(["batonctl", "dlq", "list"]).expect("parses");
    let Command::Dlq { command: DlqCommand::List(args) } = cli.command else { panic!("not dlq list") };
    assert_eq!((args.tenant_filter.as_str(), args.limit), ("", 0));
}

#[test]
fn dlq_requeue_and_discard_take_a_run_id() {
    let cli = Cli::try_parse_from(["batonctl", "dlq", "requeue", "r1"]).expect("parses");
    assert!(matches!(cli.command, Command::Dlq { command: DlqCommand::Requeue { run_id } } if run_id == "r1"));
    let cli = Cli::try_parse_from(["batonctl", "dlq", "discard", "r2"]).expect("parses");
    assert!(matches!(cli.command, Command::Dlq { command: DlqCommand::Discard { run_id } } if run_id == "r2"));
    assert!(Cli::try_parse_from(["batonctl", "dlq", "requeue"]).is_err());
}

#[test]
fn a_model_run_takes_tools_and_budgets() {
    let argv =
        ["batonctl", "submit", "--model", "local", "--goal", "g", "--tool", "a", "--tool", "b", "--max-tokens", "9"];
    let cli = Cli::try_parse_from(argv).expect("parses");
    let Command::Submit(args) = cli.command else { panic!("not submit") };
    assert_eq!(args.model.as_deref(), Some("local"));
    assert_eq!(args.tools, ["a", "b"]);
    assert!(Cli::try_parse_from(["batonctl", "submit", "--goal", "g"]).is_err(), "a planner is required");
    assert!(Cli::try_parse_from(["batonctl", "submit", "--model", "m", "--step", "echo"]).is_err(), "one planner");
    let cli = Cli::try_parse_from(["batonctl", "tools", "list"]).expect("parses");
    assert!(matches!(cli.command, Command::Tools { command: ToolsCommand::List }));
}

#[test]
fn bad_step_is_a_usage_error() {
    let e = Cli::try_parse_from(["batonctl", "submit", "--step", "echo:{nope"]).expect_err("invalid");
    assert!(e.to_string().contains("not valid JSON"), "{e}");
}

#[test]
fn keys_take_the_tenant_as_the_global_flag_even_every_tenant() {
    let argv = ["batonctl", "--api-key", "k", "keys", "create", "--tenant", "*", "--role", "admin", "--name", "ops"];
    let cli = Cli::try_parse_from(argv).expect("parses");
    assert_eq!(cli.tenant.as_deref(), Some("*"));
    let Command::Keys { command: KeysCommand::Create { role, name } } = cli.command else { panic!("not keys create") };
    assert_eq!((role, name.as_str()), (baton_proto::v1::Role::Admin, "ops"));
}
