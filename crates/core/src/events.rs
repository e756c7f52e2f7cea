//! Building `RunEvent`s: every event gets the run's next sequence number, without gaps.

use crate::v1::{EventKind, RunEvent, RunState};

/// Appends an event of `kind` to `out`, numbering it from `state.event_seq` (which it advances).
pub fn push(
    state: &mut RunState,
    out: &mut Vec<RunEvent>,
    kind: EventKind,
    now_ms: i64,
    fill: impl FnOnce(&mut RunEvent),
) {
    state.event_seq += 1;
    let mut event = RunEvent {
        run_id: state.run_id.clone(),
        seq: state.event_seq,
        kind: kind as i32,
        at_ms: now_ms,
        status: state.status,
        tenant: state.tenant.clone(),
        ..Default::default()
    };
    fill(&mut event);
    out.push(event);
}
