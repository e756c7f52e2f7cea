//! Retry tiers (DESIGN §3): a retried step waits on a fixed-delay tier topic, the one whose
//! delay is the largest not above its back-off, and waits exactly that tier's delay. Every
//! record of a tier waits the same time, so each partition is due in offset order: the
//! scheduler pauses a partition until its head is due and nothing queues behind a longer wait.

/// Index of the tier for a back-off of `delay_ms`: the largest tier not above it, else the
/// shortest. `tiers_ms` is sorted ascending and non-empty.
pub fn tier_index(delay_ms: u64, tiers_ms: &[u64]) -> usize {
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
    fn a_retry_waits_exactly_its_tier() {
        assert_eq!(tier_delay_ms(4_500, &TIERS), 1_000);
        assert_eq!(tier_delay_ms(200, &TIERS), 1_000);
        assert_eq!(tier_delay_ms(4_500, &[]), 4_500);
    }

    #[test]
    fn labels_are_short() {
        let labels: Vec<_> = TIERS.iter().map(|t| tier_label(*t)).collect();
        assert_eq!(labels, vec!["1s", "10s", "1m", "10m"]);
        assert_eq!(tier_label(250), "250ms");
        assert_eq!(tier_label(7_200_000), "2h");
    }
}
