//! Arguments of `tools list|reload|disable|enable|require-approval|no-approval`.

use clap::{Args, Subcommand};

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
