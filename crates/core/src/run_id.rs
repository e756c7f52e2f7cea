//! Run ids and what their age tells. The gateway mints every run id as a UUIDv7, whose first 48
//! bits are the Unix time in milliseconds, and writes a run's index and listing entries before
//! the run itself (so a submit cut off half-way is found and finished). A sweep that meets an
//! entry whose run does not exist yet must therefore not remove it while the submit that minted
//! the id may still be writing: a submit slowed by a failover can take seconds, and a removed
//! in-flight entry strands the run it then creates.

/// How long after minting its id a submit may still create its run: far longer than any submit
/// takes, failovers and client retries with the same idempotency key included.
pub const SUBMIT_WINDOW_MS: i64 = 10 * 60 * 1000;

/// When run id `run_id` was minted (Unix ms), if it is a UUIDv7.
pub fn minted_at_ms(run_id: &str) -> Option<i64> {
    let bytes = run_id.as_bytes();
    if bytes.len() != 36 || bytes[8] != b'-' || bytes[13] != b'-' || bytes[14] != b'7' {
        return None;
    }
    let hex = [&run_id[..8], &run_id[9..13]].concat();
    i64::from_str_radix(&hex, 16).ok()
}

/// The mint time after which a run not found may still be created by its submit, at `now_ms`
/// with runs kept `retention_ms`: [`SUBMIT_WINDOW_MS`] ago, or the retention ago if shorter (a
/// run older than its retention is gone for good).
pub fn creation_cutoff_ms(now_ms: i64, retention_ms: u64) -> i64 {
    now_ms - SUBMIT_WINDOW_MS.min(i64::try_from(retention_ms).unwrap_or(i64::MAX))
}

/// Whether the run `run_id`, not found, may still be created by its submit: its id was minted
/// after `cutoff_ms` ([`creation_cutoff_ms`]). An id that is not a UUIDv7 may not.
pub fn may_still_be_created(run_id: &str, cutoff_ms: i64) -> bool {
    minted_at_ms(run_id).is_some_and(|minted| minted > cutoff_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mint_time_is_read_from_a_uuid_v7() {
        // 0x01a23c5eb54a ms, version 7.
        assert_eq!(minted_at_ms("01a23c5e-b54a-762a-a662-5a9d807c6bd9"), Some(0x01a2_3c5e_b54a));
        assert_eq!(minted_at_ms("01a23c5e-b54a-462a-a662-5a9d807c6bd9"), None, "a v4 id has no time");
        assert_eq!(minted_at_ms("run-1"), None);
        assert_eq!(minted_at_ms("zza23c5e-b54a-762a-a662-5a9d807c6bd9"), None);
    }

    #[test]
    fn a_missing_run_is_waited_for_only_while_its_submit_may_be_running() {
        let id = "01a23c5e-b54a-762a-a662-5a9d807c6bd9";
        let minted = 0x01a2_3c5e_b54a;
        let day = 86_400_000;
        assert!(may_still_be_created(id, creation_cutoff_ms(minted + 5_000, day)));
        assert!(may_still_be_created(id, creation_cutoff_ms(minted + SUBMIT_WINDOW_MS - 1, day)));
        assert!(!may_still_be_created(id, creation_cutoff_ms(minted + SUBMIT_WINDOW_MS, day)));
        // Kept 5 s: after 5 s it expired rather than not being written yet.
        assert!(may_still_be_created(id, creation_cutoff_ms(minted + 4_000, 5_000)));
        assert!(!may_still_be_created(id, creation_cutoff_ms(minted + 6_000, 5_000)));
        assert!(!may_still_be_created("not-a-uuid", i64::MIN));
    }
}
