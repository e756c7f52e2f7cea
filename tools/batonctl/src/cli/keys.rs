//! Arguments of `keys create|list|revoke`. The tenant a key is made for, or whose keys are
//! listed, is the global `--tenant` (here a field of the request, never the tenant header).

use baton_proto::v1::Role;
use clap::Subcommand;

use crate::args::parse_role;

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for `--tenant` (`*`: every tenant; left out: the caller's own) with a role;
    /// prints its secret, once.
    Create {
        /// submitter, operator or admin.
        #[arg(long, value_name = "ROLE", value_parser = parse_role)]
        role: Role,
        /// What the key is for, e.g. `ci`.
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        name: String,
    },
    /// List keys (never their secrets); only `--tenant`'s when it is given.
    List {
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a key: calls made with it are refused from then on.
    Revoke {
        /// The key id, as `keys list` shows it.
        key_id: String,
        /// Why (audited).
        #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
        reason: String,
    },
}
