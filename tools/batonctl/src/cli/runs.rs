//! Arguments of the run commands: `submit`, `get`, `steps`, `list`, `watch`, `cancel`.

use baton_proto::v1::{AutonomyLevel, RunStatus, ToolCall};
use clap::Args;

use crate::args::{parse_autonomy, parse_status, parse_step};

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

/// Flags of `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The run id.
    pub run_id: String,
    /// How many of the latest steps to show (0: the gateway's default, 100).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub steps: u32,
}

/// Flags of `steps`.
#[derive(Debug, Args)]
pub struct StepsArgs {
    /// The run id.
    pub run_id: String,
    /// Steps per page (0: the gateway's default, 100).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub page_size: u32,
    /// Continue from the `next_page_token` of an earlier page.
    #[arg(long, value_name = "T", default_value = "", hide_default_value = true)]
    pub page_token: String,
    /// Follow next_page_token until every step is printed.
    #[arg(long)]
    pub all: bool,
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

/// Flags of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The run id.
    pub run_id: String,
    /// Skip events with seq <= N (resume an interrupted watch).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub after_seq: u64,
}

/// Flags of `cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run id.
    pub run_id: String,
    /// Why, recorded with the cancellation.
    #[arg(long, value_name = "TEXT", default_value = "", hide_default_value = true)]
    pub reason: String,
}
