//! Where results go: a [`Printer`] writes each answer to stdout as text or as one JSON line, as
//! `--json` chose. A leaf: the command modules render their answers and hand both forms here.

use std::io::{self, Write as _};

/// Prints answers in the format chosen by `--json`.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// One JSON object per line instead of human-readable text.
    pub json: bool,
}

impl Printer {
    /// Writes one answer: `as_json` (one line) with `--json`, else `as_text` (nothing when it is
    /// empty). An error (e.g. a closed pipe) goes back to the caller, not a panic.
    pub fn emit(
        &self,
        as_json: impl FnOnce() -> serde_json::Value,
        as_text: impl FnOnce() -> String,
    ) -> io::Result<()> {
        let text = if self.json { as_json().to_string() } else { as_text() };
        if text.is_empty() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()
    }
}
