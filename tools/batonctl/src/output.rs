//! Where results go: one `Printer` that writes each message to stdout as text or as one JSON line,
//! plus the name and time formatting both forms share.

use std::io::{self, Write as _};

use baton_proto::v1::{
    CancelRunResponse, EventKind, ListDeadLettersResponse, ListRunsResponse, ListStepsResponse, ListToolsResponse,
    ReloadToolsResponse, RequeueDeadLetterResponse, Run, RunEvent, RunStatus, SubmitRunResponse,
};

use crate::{dlq, human, json, tools};

/// Prints API messages in the format chosen by `--json`.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// One JSON object per line instead of human-readable text.
    pub json: bool,
}

impl Printer {
    /// A SubmitRun result.
    pub fn submitted(&self, resp: &SubmitRunResponse) -> io::Result<()> {
        emit(self.json, || json::submitted(resp).to_string(), || human::submitted(resp))
    }

    /// One event of a watched run.
    pub fn event(&self, event: &RunEvent) -> io::Result<()> {
        emit(self.json, || json::event(event).to_string(), || human::event(event))
    }

    /// A run, as returned by GetRun.
    pub fn run(&self, run: &Run) -> io::Result<()> {
        emit(self.json, || json::run(run).to_string(), || human::run(run))
    }

    /// One page of ListRuns.
    pub fn run_list(&self, page: &ListRunsResponse) -> io::Result<()> {
        emit(self.json, || json::run_list(page).to_string(), || human::run_list(page))
    }

    /// A CancelRun result for `run_id`.
    pub fn cancelled(&self, run_id: &str, resp: &CancelRunResponse) -> io::Result<()> {
        emit(self.json, || json::cancelled(run_id, resp).to_string(), || human::cancelled(run_id, resp))
    }

    /// A ListDeadLetters result.
    pub fn dead_letters(&self, resp: &ListDeadLettersResponse) -> io::Result<()> {
        emit(self.json, || dlq::json_list(resp).to_string(), || dlq::text_list(resp))
    }

    /// A RequeueDeadLetter result for `run_id`.
    pub fn requeued(&self, run_id: &str, resp: &RequeueDeadLetterResponse) -> io::Result<()> {
        emit(self.json, || dlq::json_requeued(run_id, resp).to_string(), || dlq::text_requeued(run_id, resp))
    }

    /// A page of ListSteps; with `all`, the page token line is left out (the caller follows it).
    pub fn steps(&self, page: &ListStepsResponse, all: bool) -> io::Result<()> {
        emit(self.json, || json::step_page(page).to_string(), || human::step_page(page, all))
    }

    /// A ListTools result.
    pub fn tools(&self, resp: &ListToolsResponse) -> io::Result<()> {
        emit(self.json, || tools::json_list(resp).to_string(), || tools::text_list(resp))
    }

    /// A ReloadTools result.
    pub fn tools_reloaded(&self, resp: &ReloadToolsResponse) -> io::Result<()> {
        emit(self.json, || tools::json_reloaded(resp).to_string(), || tools::text_reloaded(resp))
    }

    /// A successful DiscardDeadLetter of `run_id`.
    pub fn discarded(&self, run_id: &str) -> io::Result<()> {
        emit(self.json, || dlq::json_discarded(run_id).to_string(), || dlq::text_discarded(run_id))
    }
}

/// Writes one rendered message; an error (e.g. a closed pipe) goes back to the caller, not a panic.
pub fn emit(json: bool, as_json: impl FnOnce() -> String, as_text: impl FnOnce() -> String) -> io::Result<()> {
    let text = if json { as_json() } else { as_text() };
    if text.is_empty() {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

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
    }

    #[test]
    fn one_line_escapes_breaks() {
        assert_eq!(one_line("a\nb\tc"), "a\\nb\\tc");
    }
}
