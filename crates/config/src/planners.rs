//! Who proposes a run's steps: `[models.<name>]` (OpenAI-compatible endpoints, with their
//! history policy) and `[agents.<name>]` (the user's own `AgentService`).

use serde::{Deserialize, Serialize};

/// The most steps a planner may be shown, and so read per claim (`history_max_steps`).
pub const MAX_HISTORY_STEPS: u32 = 1000;

/// Latest steps a model is always shown whole when the endpoint does not say.
pub const DEFAULT_HISTORY_RECENT_STEPS: u32 = 10;

/// Estimated tokens for older steps when the endpoint does not say.
pub const DEFAULT_HISTORY_BUDGET_TOKENS: u64 = 4000;

/// Most steps a model or agent is shown when its section does not say.
pub const DEFAULT_HISTORY_MAX_STEPS: u32 = 50;

/// `[models.<name>]`: an OpenAI-compatible chat-completions endpoint with tool calling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Model {
    /// Base URL up to the API version, e.g. `https://api.openai.com/v1`; requests go to
    /// `<base_url>/chat/completions`.
    pub base_url: String,
    /// The `model` field of each request.
    pub model: String,
    /// Environment variable holding the API key (sent as `Authorization: Bearer`); empty for none.
    pub api_key_env: String,
    /// Longest one completion may take; a timeout is retried through the retry tiers.
    pub timeout_ms: u64,
    /// `max_tokens` of each request (lowered to what the run's token budget has left).
    pub max_output_tokens: u32,
    /// Price per million input tokens, in the currency of `max_cost_micros` (e.g. USD).
    pub input_price_per_mtok: f64,
    /// Price per million output tokens.
    pub output_price_per_mtok: f64,
    /// Largest response body accepted; a larger one fails the step for good.
    pub max_response_bytes: usize,
    /// History policy: the latest steps always sent whole (tool call and result), whatever
    /// their size. At least 1 (a model must see its last result).
    pub history_recent_steps: u32,
    /// History policy: estimated tokens (4 bytes a token) for the steps before those, added
    /// newest first while they fit; the steps that do not fit are elided, and the model is told
    /// how many. 0 sends only the recent steps.
    pub history_budget_tokens: u64,
    /// History policy: the most steps a request shows, and so the most step records a claim
    /// reads (1..=1000, at least `history_recent_steps`).
    pub history_max_steps: u32,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            model: String::new(),
            api_key_env: String::new(),
            timeout_ms: 60_000,
            max_output_tokens: 1024,
            input_price_per_mtok: 0.0,
            output_price_per_mtok: 0.0,
            max_response_bytes: 1024 * 1024,
            history_recent_steps: DEFAULT_HISTORY_RECENT_STEPS,
            history_budget_tokens: DEFAULT_HISTORY_BUDGET_TOKENS,
            history_max_steps: DEFAULT_HISTORY_MAX_STEPS,
        }
    }
}

/// `[agents.<name>]`: a `baton.v1.AgentService` served by the user's own code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Agent {
    /// gRPC endpoint, e.g. `http://127.0.0.1:50071`.
    pub endpoint: String,
    /// Longest one Propose call may take; a timeout is retried through the retry tiers.
    pub timeout_ms: u64,
    /// Largest response accepted.
    pub max_response_bytes: usize,
    /// The most recent steps sent in `ProposeRequest.history` (1..=1000), and so the most step
    /// records a claim reads; `ProposeRequest.step` says how many there are in all.
    pub history_max_steps: u32,
}

impl Default for Agent {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            timeout_ms: 60_000,
            max_response_bytes: 1024 * 1024,
            history_max_steps: DEFAULT_HISTORY_MAX_STEPS,
        }
    }
}
