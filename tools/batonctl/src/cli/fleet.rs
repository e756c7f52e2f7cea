//! Arguments of the fleet's admin commands: `lanes …`, `tenants cap` and `limits set`.

use clap::Subcommand;

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
