//! Arguments of the human gates: `approvals list|approve|deny` and `reconcile`.

use clap::{Args, Subcommand};

/// `approvals` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The tenant's runs waiting for an approval, oldest first, with the action and its hash.
    List {
        /// Most to list per page (0: 100).
        #[arg(long, value_name = "N", default_value_t = 0)]
        limit: u32,
        /// Start after the page that printed this `next_page_token`.
        #[arg(long, value_name = "TOKEN", default_value = "", hide_default_value = true)]
        page_token: String,
        /// Every page, one after the other (no `next_page_token` printed).
        #[arg(long)]
        all: bool,
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
