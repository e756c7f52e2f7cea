//! The command line as clap types: global flags and the subcommand tree. Each command group's
//! arguments are in their own file: runs (`runs.rs`), dead letters (`dlq.rs`), tools
//! (`tools.rs`), approvals and reconciliation (`gates.rs`), lanes, tenants and limits
//! (`fleet.rs`), API keys (`keys.rs`).

mod dlq;
mod fleet;
mod gates;
mod keys;
mod runs;
#[cfg(test)]
mod tests;
mod tools;

use clap::{Parser, Subcommand};

pub use dlq::DlqCommand;
pub use fleet::{LanesCommand, LimitsCommand, RouteArgs, TenantsCommand};
pub use gates::{ApprovalsCommand, ReconcileArgs, ResolveArgs};
pub use keys::KeysCommand;
pub use runs::{CancelArgs, GetArgs, ListArgs, StepsArgs, SubmitArgs, WatchArgs};
pub use tools::ToolsCommand;

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
    /// For `keys`, the tenant whose keys are made or listed (`*`: every tenant), not a header.
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
    Get(GetArgs),
    /// Page through a run's recorded steps, oldest first, one line each.
    Steps(StepsArgs),
    /// List the tenant's runs, one line each.
    List(ListArgs),
    /// Stream a run's events (history, then live) until it ends.
    Watch(WatchArgs),
    /// Ask Baton to cancel a run.
    Cancel(CancelArgs),
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
        command: KeysCommand,
    },
    /// Operator switches in force and the latest changes, who made them and why (AdminService).
    Switches {
        /// How many of the latest changes to show (0: 50).
        #[arg(long, value_name = "N", default_value_t = 0)]
        audit_limit: u32,
    },
}
