//! How much of a run's history a model is shown: the endpoint's history policy
//! (`[models.<name>] history_recent_steps`, `history_budget_tokens`, `history_max_steps`). The
//! latest `history_recent_steps` steps are always sent whole; older ones are added newest first
//! while their estimated size fits `history_budget_tokens`, at most `history_max_steps` steps in
//! all; everything before is elided, and the model is told how many steps it does not see. The
//! system prompt and the goal are always sent. A request's size is then bounded by the policy,
//! not by the run's length.

use baton_proto::v1::StepRecord;

use super::step_result_text;

/// Bytes per token when estimating a step's size (a rough figure for English and JSON).
pub const BYTES_PER_TOKEN: usize = 4;

/// The part of a run's history a request shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shown<'a> {
    /// Steps before `steps` that are not shown.
    pub elided: u32,
    /// The latest steps, oldest first: a contiguous tail of the run.
    pub steps: &'a [StepRecord],
}

/// The steps of `history` (the run's latest records, oldest first, ending at its newest) a model
/// under `policy` is shown, for a run that has recorded `recorded` steps in all.
pub fn shown<'a>(history: &'a [StepRecord], recorded: u32, policy: &baton_config::Model) -> Shown<'a> {
    let most = (policy.history_max_steps as usize).min(history.len());
    let recent = (policy.history_recent_steps as usize).min(most);
    let mut kept = recent;
    let mut budget = policy.history_budget_tokens;
    for record in history[..history.len() - recent].iter().rev().take(most - recent) {
        let tokens = estimated_tokens(record);
        if tokens > budget {
            break;
        }
        budget -= tokens;
        kept += 1;
    }
    let steps = &history[history.len() - kept..];
    Shown { elided: recorded.saturating_sub(kept as u32), steps }
}

/// A step's estimated size in tokens, as the model reads it: its text, call and result.
pub fn estimated_tokens(record: &StepRecord) -> u64 {
    let bytes = record.model_text.len() + record.tool.len() + record.args_json.len() + step_result_text(record).len();
    bytes.div_ceil(BYTES_PER_TOKEN) as u64
}

/// What the model is told in place of `elided` steps it does not see.
pub fn elided_note(elided: u32) -> String {
    let what = if elided == 1 { "1 earlier step".to_string() } else { format!("{elided} earlier steps") };
    format!(
        "[{what} of this run are not shown to keep this request small; the latest steps follow. \
         Their calls ran (or were rejected) as recorded: do not repeat them.]"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u32, output_bytes: usize) -> StepRecord {
        StepRecord {
            step,
            tool: "echo".into(),
            args_json: "{}".into(),
            output_json: "x".repeat(output_bytes),
            ..Default::default()
        }
    }

    fn policy(recent: u32, budget_tokens: u64, most: u32) -> baton_config::Model {
        baton_config::Model {
            history_recent_steps: recent,
            history_budget_tokens: budget_tokens,
            history_max_steps: most,
            ..Default::default()
        }
    }

    fn steps(shown: &Shown<'_>) -> Vec<u32> {
        shown.steps.iter().map(|r| r.step).collect()
    }

    #[test]
    fn a_short_run_is_shown_whole() {
        let history: Vec<_> = (0..3).map(|i| record(i, 10)).collect();
        let s = shown(&history, 3, &policy(2, 1_000, 50));
        assert_eq!((s.elided, steps(&s)), (0, vec![0, 1, 2]));
    }

    #[test]
    fn recent_steps_are_whole_and_older_ones_fill_the_budget_newest_first() {
        // Each record: 4 + 2 + 396 bytes = 402 bytes = 101 tokens.
        let history: Vec<_> = (0..100).map(|i| record(i, 396)).collect();
        assert_eq!(estimated_tokens(&history[0]), 101);
        let s = shown(&history, 100, &policy(3, 250, 50));
        assert_eq!(steps(&s), vec![95, 96, 97, 98, 99], "3 recent plus 2 that fit 250 tokens");
        assert_eq!(s.elided, 95);
        let s = shown(&history, 100, &policy(3, 0, 50));
        assert_eq!((s.elided, steps(&s)), (97, vec![97, 98, 99]), "recent steps do not count against the budget");
        let s = shown(&history, 100, &policy(3, 1_000_000, 10));
        assert_eq!((s.elided, s.steps.len()), (90, 10), "at most history_max_steps");
        let huge = vec![record(0, 1_000_000), record(1, 10)];
        let s = shown(&huge, 2, &policy(1, 100, 50));
        assert_eq!((s.elided, steps(&s)), (1, vec![1]), "a large old step is elided, not cut");
    }

    #[test]
    fn the_elided_count_includes_steps_never_read() {
        let tail: Vec<_> = (900..950).map(|i| record(i, 10)).collect();
        let s = shown(&tail, 950, &policy(10, 1_000_000, 50));
        assert_eq!((s.elided, s.steps.len()), (900, 50));
        assert!(elided_note(900).starts_with("[900 earlier steps of this run are not shown"));
        assert!(elided_note(1).starts_with("[1 earlier step of"));
    }
}
