//! Retry tiers (DESIGN §3): a retried step waits on a fixed-delay tier topic, the one whose
//! delay is the largest not above its back-off, and waits exactly that tier's delay. Every
//! record of a tier waits the same time, so each partition is due in offset order: the
//! scheduler pauses a partition until its head is due and nothing queues behind a longer wait.

use crate::v1::RetryPolicy;

/// Back-off before retry number `attempt + 1`: exponential from the initial delay, plus up to
/// 20% jitter (`jitter` in `[0, 1)`), capped. Jitter only adds, so a back-off never falls
/// below the retry tier its un-jittered value selects.
pub fn backoff_ms(policy: &RetryPolicy, attempt: u32, jitter: f64) -> u64 {
    let base = policy.initial_backoff_ms.max(1);
    let cap = policy.max_backoff_ms.max(base);
    let exp = base.saturating_mul(1u64 << attempt.min(32)).min(cap);
    let extra = (exp as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as u64;
    exp.saturating_add(extra).min(cap)
}

/// Index of the tier for a back-off of `delay_ms`: the largest tier not above it, else the
/// shortest. `tiers_ms` is sorted ascending and non-empty.
fn tier_index(delay_ms: u64, tiers_ms: &[u64]) -> usize {
    tiers_ms.iter().rposition(|t| *t <= delay_ms).unwrap_or(0)
}

/// How long a retry with back-off `backoff_ms` really waits: its tier's delay (or exactly the
/// back-off when there are no tiers).
pub fn tier_delay_ms(backoff_ms: u64, tiers_ms: &[u64]) -> u64 {
    if tiers_ms.is_empty() {
        return backoff_ms;
    }
    tiers_ms[tier_index(backoff_ms, tiers_ms)]
}

/// The shortest tier of at least `delay_ms` (the longest if none is): for a retry that must
/// not run before a server's `Retry-After`.
pub fn tier_at_least_ms(delay_ms: u64, tiers_ms: &[u64]) -> u64 {
    tiers_ms.iter().copied().find(|t| *t >= delay_ms).or(tiers_ms.last().copied()).unwrap_or(delay_ms)
}

/// Topic suffix of a tier: `500ms`, `1s`, `10s`, `1m`, `10m`, `2h`.
pub fn tier_label(ms: u64) -> String {
    match ms {
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIERS: [u64; 4] = [1_000, 10_000, 60_000, 600_000];

    #[test]
    fn picks_the_largest_tier_not_above_the_delay() {
        assert_eq!(tier_index(200, &TIERS), 0);
        assert_eq!(tier_index(1_000, &TIERS), 0);
        assert_eq!(tier_index(9_999, &TIERS), 0);
        assert_eq!(tier_index(10_000, &TIERS), 1);
        assert_eq!(tier_index(3_600_000, &TIERS), 3);
    }

    #[test]
    fn backoff_grows_caps_and_jitters_down() {
        let p = RetryPolicy { max_attempts: 10, initial_backoff_ms: 100, max_backoff_ms: 1_000 };
        assert_eq!(backoff_ms(&p, 0, 0.0), 100);
        assert_eq!(backoff_ms(&p, 1, 0.0), 200);
        assert_eq!(backoff_ms(&p, 3, 0.0), 800);
        assert_eq!(backoff_ms(&p, 4, 0.0), 1_000);
        assert_eq!(backoff_ms(&p, 60, 0.0), 1_000);
        assert_eq!(backoff_ms(&p, 4, 0.5), 1_000, "the cap holds with jitter");
        assert_eq!(backoff_ms(&p, 1, 0.5), 220);
    }

    #[test]
    fn a_retry_waits_exactly_its_tier() {
        assert_eq!(tier_delay_ms(4_500, &TIERS), 1_000);
        assert_eq!(tier_delay_ms(200, &TIERS), 1_000);
        assert_eq!(tier_delay_ms(4_500, &[]), 4_500);
        assert_eq!(tier_at_least_ms(4_500, &TIERS), 10_000);
        assert_eq!(tier_at_least_ms(10_000, &TIERS), 10_000);
        assert_eq!(tier_at_least_ms(7_200_000, &TIERS), 600_000);
        assert_eq!(tier_at_least_ms(4_500, &[]), 4_500);
    }

    #[test]
    fn labels_are_short() {
        let labels: Vec<_> = TIERS.iter().map(|t| tier_label(*t)).collect();
        assert_eq!(labels, vec!["1s", "10s", "1m", "10m"]);
        assert_eq!(tier_label(250), "250ms");
        assert_eq!(tier_label(7_200_000), "2h");
    }
}
