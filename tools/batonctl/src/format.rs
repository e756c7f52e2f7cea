//! Formatting shared by the text and JSON forms: short names of statuses, event kinds and step
//! outcomes, RFC 3339 timestamps, free text kept on one line. A leaf: it uses nothing else of
//! batonctl, so every printer can use it.

use baton_proto::v1::{EventKind, RunStatus, StepOutcome};

/// Short lowercase status name (`succeeded`, `timed_out`), or `status(N)` for an unknown value.
pub fn status_name(raw: i32) -> String {
    match RunStatus::try_from(raw) {
        Ok(s) => baton_core::status::name(s).to_string(),
        Err(_) => format!("status({raw})"),
    }
}

/// Short lowercase event kind name (`step_completed`), or `kind(N)` for an unknown value.
pub fn kind_name(raw: i32) -> String {
    match EventKind::try_from(raw) {
        Ok(k) => k.as_str_name().trim_start_matches("EVENT_KIND_").to_ascii_lowercase(),
        Err(_) => format!("kind({raw})"),
    }
}

/// Short lowercase step outcome (`completed`, `rejected`, `drafted`, `failed`).
pub fn outcome_name(raw: i32) -> String {
    match StepOutcome::try_from(raw) {
        Ok(StepOutcome::Unspecified) => "completed".into(),
        Ok(o) => o.as_str_name().trim_start_matches("STEP_OUTCOME_").to_ascii_lowercase(),
        Err(_) => format!("outcome({raw})"),
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2023-11-14T22:13:20.123Z`); `-` when unset.
pub fn timestamp(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_string();
    }
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (day_secs / 3600, day_secs % 3600 / 60, day_secs % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{milli:03}Z")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Keeps free text on one line: newlines and tabs become `\n`, `\r`, `\t` (other text is left as is).
pub fn one_line(text: &str) -> String {
    text.replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "-");
        assert_eq!(timestamp(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn names() {
        assert_eq!(status_name(RunStatus::TimedOut as i32), "timed_out");
        assert_eq!(status_name(99), "status(99)");
        assert_eq!(kind_name(EventKind::StepCompleted as i32), "step_completed");
        assert_eq!(kind_name(42), "kind(42)");
        assert_eq!(outcome_name(StepOutcome::Unspecified as i32), "completed");
        assert_eq!(outcome_name(StepOutcome::Rejected as i32), "rejected");
        assert_eq!(outcome_name(77), "outcome(77)");
    }

    #[test]
    fn one_line_escapes_breaks() {
        assert_eq!(one_line("a\nb\tc"), "a\\nb\\tc");
    }
}
