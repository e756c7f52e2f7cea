//! Arguments of `dlq list|requeue|discard`.

use clap::{Args, Subcommand};

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
