//! The command line: global flags and subcommands (runs, `dlq`, `tools`), as clap types.

use baton_proto::v1::{AutonomyLevel, RunStatus, ToolCall};
use clap::{Args, Parser, Subcommand};

use crate::args::{parse_autonomy, parse_status, parse_step};

/// Operator CLI for Baton: submit, inspect, watch and cancel runs, handle dead letters and see
/// the tool catalog, over the gRPC API.
#[derive(Debug, Parser)]
#[command(
    name = "batonctl",
    version,
    after_help = "Exit status: 0 ok; 1 error (gRPC errors print `error: CODE: message` on stderr); \
                  2 bad usage; 3 a watched run ended without succeeding; 4 readiness: a blocking item fails."
)]
pub struct Cli {
    /// Gateway address.
    #[arg(long, global = true, env = "BATON_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Tenant to act for, sent in the `x-baton-tenant` header (without it: the credential's
    /// tenant, or `default`). With a one-tenant API key or JWT it must be that tenant or left out.
    #[arg(long, global = true, env = "BATON_TENANT")]
    pub tenant: Option<String>,
    /// API key or JWT, sent as `authorization: Bearer …` (needed when the gateway has
    /// auth.mode = "required").
    #[arg(long, global = true, env = "BATON_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM file of the CA that signed the gateway's TLS certificate (with an https:// --addr).
    #[arg(long, global = true, env = "BATON_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Print each message as one JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who acts, recorded with approvals, reconciliations and switch changes (required by them).
    #[arg(long, global = true, env = "BATON_ACTOR", default_value = "", hide_default_value = true)]
    pub actor: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a run (a script plan, or a model or agent with tools); prints its run id.
    Submit(SubmitArgs),
    /// Show one run: status, stop reason, spend, result, and every step (proposals, rejections
    /// with reason codes, drafts, tool results).
    Get {
        /// The run id.
        run_id: String,
        /// How many of the latest steps to show (0: the gateway's default, 100).
        #[arg(long, value_name = "N", default_value_t = 0)]
        steps: u32,
    },
    /// Page through a run's recorded steps, oldest first, one line each.
    Steps {
        /// The run id.
        run_id: String,
        /// Steps per page (0: the gateway's default, 100).
        #[arg(long, value_name = "N", default_value_t = 0)]
        page_size: u32,
        /// Continue from the `next_page_token` of an earlier page.
        #[arg(long, value_name = "T", default_value = "", hide_default_value = true)]
        page_token: String,
        /// Follow next_page_token until every step is printed.
        #[arg(long)]
        all: bool,
    },
    /// List the tenant's runs, one line each.
    List(ListArgs),
    /// Stream a run's events (history, then live) until it ends.
    Watch {
        /// The run id.
        run_id: String,
        /// Skip events with seq <= N (resume an interrupted watch).
        #[arg(long, value_name = "N", default_value_t = 0)]
        after_seq: u64,
    },
    /// Ask Baton to cancel a run.
    Cancel {
        /// The run id.
        run_id: String,
        /// Why, recorded with the cancellation.
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Operate on dead letters: steps that exhausted their retries (AdminService, all tenants).
    Dlq {
        /// What to do with dead letters.
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The fleet's tools: built-ins and the tool manifest, with switches and breakers (AdminService).
    Tools {
        /// What to do.
        #[command(subcommand)]
        command: ToolsCommand,
    },
    /// Runs waiting for a person to approve one exact action.
    Approvals {
        /// What to do.
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Say what happened to a call whose outcome is uncertain (a run waiting with reason
    /// needs_reconciliation): --done --output JSON, --not-done (run it again, same key) or --fail.
    Reconcile(ReconcileArgs),
    /// Pause or resume a lane's dispatch (AdminService; audited; every worker within seconds).
    Lanes {
        /// What to do.
        #[command(subcommand)]
        command: LanesCommand,
    },
    /// Tenants' caps on runs not yet ended (AdminService; audited).
    Tenants {
        /// What to do.
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Admission limits per tenant or lane, changed at run time (AdminService; audited).
    Limits {
        /// What to do.
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// The production-readiness checklist against this deployment: owner, status, evidence and
    /// next action per item; exit status 4 when a blocking item fails.
    Readiness {
        /// The Prometheus that scrapes Baton (http://HOST:PORT): checks metrics and alert rules.
        #[arg(long, value_name = "URL")]
        prometheus: Option<String>,
    },
    /// API keys: create (the secret is shown once), list, revoke (KeyService; admin role).
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: crate::keys::KeysCommand,
    },
    /// Operator switches in force and the latest changes, who made them and why (AdminService).
    Switches {
        /// How many of the latest changes to show (0: 50).
        #[arg(long, value_name = "N", default_value_t = 0)]
        audit_limit: u32,
    },
}

/// `approvals` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The tenant's runs waiting for an approval, oldest first, with the action and its hash.
    List {
        /// Most to list (0: 100).
        #[arg(long, value_name = "N", default_value_t = 0)]
        limit: u32,
    },
    /// Show the run's pending action and its hash, then approve exactly that action.
    Approve(ResolveArgs),
    /// Show the run's pending action, then deny it (the planner is told, or the run ends).
    Deny(ResolveArgs),
}

/// Arguments of `approvals approve|deny`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The run id.
    pub run_id: String,
    /// Why, recorded with the decision.
    #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
    pub comment: String,
    /// The approval id to resolve (default: the one the run shows now).
    #[arg(long, value_name = "ID")]
    pub approval: Option<String>,
    /// The action hash you reviewed (default: the one the run shows now); a different pending
    /// action is refused.
    #[arg(long, value_name = "HASH")]
    pub hash: Option<String>,
}

/// Arguments of `reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The run id.
    pub run_id: String,
    /// The call happened; its output is --output.
    #[arg(long)]
    pub done: bool,
    /// What the call returned, a JSON value (with --done).
    #[arg(long, value_name = "JSON")]
    pub output: Option<String>,
    /// The call did not happen: run it again, with the same idempotency key.
    #[arg(long)]
    pub not_done: bool,
    /// The call failed.
    #[arg(long)]
    pub fail: bool,
    /// The step the run waits on (default: read from the run).
    #[arg(long, value_name = "N")]
    pub step: Option<u32>,
    /// Why, recorded with the reconciliation.
    #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
    pub comment: String,
}

/// `lanes` subcommands.
#[derive(Debug, Subcommand)]
pub enum LanesCommand {
    /// Hold the lane's dispatch: tasks wait on its topic, nothing is lost.
    Pause {
        /// The lane.
        lane: String,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Release the lane's dispatch.
    Resume {
        /// The lane.
        lane: String,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Each lane: routing weight, paused, runs not yet ended, queued tasks, version set.
    List {
        /// Which route: the fleet's, a tenant's or an agent's.
        #[command(flatten)]
        route: RouteArgs,
    },
    /// Set routing weights, e.g. `main=95 canary=5` (the lanes not named keep theirs).
    Weights {
        /// LANE=WEIGHT pairs.
        #[arg(required = true, value_name = "LANE=WEIGHT")]
        weights: Vec<String>,
        /// Which route: the fleet's, a tenant's or an agent's.
        #[command(flatten)]
        route: RouteArgs,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Send no new run to the lane (weight 0); the runs it holds finish on it.
    Rollback {
        /// The lane.
        lane: String,
        /// Which route: the fleet's, a tenant's or an agent's.
        #[command(flatten)]
        route: RouteArgs,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Roll the lane back, then wait until it holds no run (at most --timeout-secs).
    Drain {
        /// The lane.
        lane: String,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
        /// Longest wait for the lane to empty; exit status 3 if it has not.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Drop every weight override (or a tenant's whole route): the configured weights apply again.
    Reset {
        /// Which route: the fleet's, a tenant's or an agent's.
        #[command(flatten)]
        route: RouteArgs,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
}

/// The route a `lanes` command reads or changes (neither flag: the fleet's).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RouteArgs {
    /// A tenant's own route instead of the fleet's.
    #[arg(long = "route", value_name = "TENANT", default_value = "", hide_default_value = true)]
    pub tenant: String,
    /// An agent's route (a grpc agent or a model endpoint name) instead of the fleet's.
    #[arg(long, value_name = "AGENT", default_value = "", hide_default_value = true, conflicts_with = "tenant")]
    pub agent: String,
}

/// `tenants` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Set a tenant's cap on runs not yet ended (0: back to the configured default).
    Cap {
        /// The tenant.
        tenant: String,
        /// Most runs not yet ended.
        max_active_runs: u32,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
}

/// `limits` subcommands.
#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Set a limit: tenant.max_active_runs, tenant.submit_rate (per second), lane.max_active_runs
    /// or lane.max_queued (consumer lag, records); 0 puts the configured default back.
    Set {
        /// The limit.
        limit: String,
        /// The tenant or lane it applies to.
        target: String,
        /// The new value (0: the configured default).
        value: u64,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
}

/// The `tools` subcommands.
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List the tools as loaded by the gateway: kind, side effect, idempotency, target, schema.
    List,
    /// Re-read the tool manifest now on every service (an invalid one is rejected, with the reason).
    Reload,
    /// Disable a tool fleet-wide: proposals of it are rejected, scripted calls wait (audited).
    Disable(SwitchArgs),
    /// Enable a disabled tool again (audited).
    Enable(SwitchArgs),
    /// Make every call of a tool wait for a person's approval (audited).
    RequireApproval(SwitchArgs),
    /// Lift `require-approval` (the manifest's own requires_approval still applies; audited).
    NoApproval(SwitchArgs),
}

/// Arguments of a tool switch.
#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// The tool.
    pub tool: String,
    /// Why (audited).
    #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
    pub reason: String,
}

/// The `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, one line each (newest first as the gateway returns them).
    List(DlqListArgs),
    /// Resume a dead-lettered run from its checkpoint at the failed step, with attempts reset.
    Requeue {
        /// The run id.
        run_id: String,
    },
    /// Drop a run's dead letter; the run stays dead_lettered.
    Discard {
        /// The run id.
        run_id: String,
    },
}

/// Flags of `dlq list`.
#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// Only this tenant's dead letters (default: every tenant; `--tenant` does not filter here).
    #[arg(long, value_name = "T", default_value = "", hide_default_value = true)]
    pub tenant_filter: String,
    /// Most dead letters to return (0: the gateway's default, 100; at most 10000).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub limit: u32,
}

/// Flags of `submit`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("planner").required(true).args(["steps", "model", "agent"]))]
pub struct SubmitArgs {
    /// A step of the script plan, in order: TOOL (no arguments) or TOOL:JSON_OBJECT,
    /// e.g. --step echo:'{"msg":"hi"}' --step sleep:'{"ms":200}'.
    #[arg(long = "step", value_name = "TOOL[:JSON_ARGS]", value_parser = parse_step)]
    pub steps: Vec<ToolCall>,
    /// Let this model endpoint (`[models.NAME]` in the fleet's config) drive the run.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Let this agent (`[agents.NAME]`, a baton.v1.AgentService) drive the run.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// A tool the planner may call (repeatable); see `batonctl tools list`.
    #[arg(long = "tool", value_name = "NAME")]
    pub tools: Vec<String>,
    /// System prompt of a model run.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Sampling temperature of a model run (0..=2).
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    /// advisory, drafts_for_review, executes_after_approval (side effects wait for a person) or
    /// bounded_autonomous (the default).
    #[arg(long, value_name = "LEVEL", value_parser = parse_autonomy)]
    pub autonomy: Option<AutonomyLevel>,
    /// What the run is for (a model or agent works on it).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub goal: String,
    /// Token budget, input plus output (0: the gateway's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_tokens: u64,
    /// Cost budget in millionths of the price unit (0: the gateway's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_cost_micros: u64,
    /// Most tool calls the run may make (0: the gateway's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_tool_calls: u32,
    /// Rejected proposals fed back before the run is refused (0: the gateway's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_rejections: u32,
    /// Same tenant + key returns the existing run instead of starting a second one.
    #[arg(long, value_name = "KEY", default_value = "", hide_default_value = true)]
    pub idempotency_key: String,
    /// Most steps the run may take (0: the gateway's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_steps: u32,
    /// Wall-clock budget in milliseconds from admission (0: the gateway's default).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub deadline_ms: u64,
    /// Worker lane that executes the run (empty: `main`).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub lane: String,
    /// After submitting, stream the run's events until it ends.
    #[arg(long)]
    pub watch: bool,
}

/// Flags of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs in this status (queued, running, waiting, succeeded, failed, cancelled, timed_out,
    /// budget_exhausted, refused, dead_lettered).
    #[arg(long, value_name = "NAME", value_parser = parse_status)]
    pub status: Option<RunStatus>,
    /// Runs per page (0: the gateway's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub page_size: u32,
    /// Continue from the `next_page_token` of an earlier page.
    #[arg(long, value_name = "T", default_value = "", hide_default_value = true)]
    pub page_token: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

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
        let cli = Cli::try_parse_from(["batonctl", "submit", "--step", "echo", "--step", r#"sleep:{"ms":5}"#])
            .expect("parses");
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
        let argv = [
            "batonctl",
            "submit",
            "--model",
            "local",
            "--goal",
            "g",
            "--tool",
            "a",
            "--tool",
            "b",
            "--max-tokens",
            "9",
        ];
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
}
