//! How a run is laid out in Redis (checkpoint schema 2): the checkpoint's *head* — the
//! `RunState` without its spec and steps — in the run hash, the immutable spec in
//! `baton:spec:{R}` (written once, at admission), and the step history in the list
//! `baton:steps:{R}`, appended once per step. A commit writes the head, the step records that
//! are new since the last commit, and the events, so its cost does not grow with the run.
//!
//! In memory, `RunState.spec` is attached on read and `RunState.steps` holds only the records
//! not yet appended to the list. A schema-1 checkpoint (spec and steps inline) loads as is: its
//! inline steps are exactly "not yet appended", so its next write moves them to the list and
//! writes its spec key.

use baton_core::SCHEMA_VERSION;
use baton_proto::v1::{RunSpec, RunState, StepRecord};
use prost::Message as _;

use crate::{Error, Result};

/// The head of a checkpoint as stored: everything but the spec and the steps.
pub(crate) fn head_bytes(state: &RunState) -> Vec<u8> {
    // Destructured without `..`: a field added to RunState must be placed here on purpose.
    let RunState {
        schema_version: _,
        spec: _,
        steps: _,
        run_id,
        tenant,
        idempotency_key,
        status,
        next_step,
        attempt,
        created_at_ms,
        updated_at_ms,
        deadline_at_ms,
        stop_reason,
        budget,
        retry,
        lane,
        event_seq,
        last_error,
        wake_at_ms,
        wait_reason,
        pending,
        usage,
        result,
        traceparent,
        made_calls,
    } = state;
    RunState {
        schema_version: SCHEMA_VERSION,
        spec: None,
        steps: Vec::new(),
        run_id: run_id.clone(),
        tenant: tenant.clone(),
        idempotency_key: idempotency_key.clone(),
        status: *status,
        next_step: *next_step,
        attempt: *attempt,
        created_at_ms: *created_at_ms,
        updated_at_ms: *updated_at_ms,
        deadline_at_ms: *deadline_at_ms,
        stop_reason: stop_reason.clone(),
        budget: *budget,
        retry: *retry,
        lane: lane.clone(),
        event_seq: *event_seq,
        last_error: last_error.clone(),
        wake_at_ms: *wake_at_ms,
        wait_reason: wait_reason.clone(),
        pending: pending.clone(),
        usage: *usage,
        result: result.clone(),
        traceparent: traceparent.clone(),
        made_calls: made_calls.clone(),
    }
    .encode_to_vec()
}

/// The spec bytes a write must store: the spec of a checkpoint read in the old layout (its
/// spec key does not exist yet), else nothing.
pub(crate) fn spec_to_store(state: &RunState) -> Vec<u8> {
    match &state.spec {
        Some(spec) if state.schema_version < SCHEMA_VERSION => spec.encode_to_vec(),
        _ => Vec::new(),
    }
}

/// Brings an in-memory state up to date after a successful commit of it: its new step records
/// are in the history list now, and its spec key exists.
pub fn mark_committed(state: &mut RunState) {
    state.steps.clear();
    state.schema_version = SCHEMA_VERSION;
}

/// The step records a write appends.
pub(crate) fn new_steps(state: &RunState) -> impl Iterator<Item = Vec<u8>> + '_ {
    state.steps.iter().map(prost::Message::encode_to_vec)
}

/// A run from its stored head, status and spec; a head in a newer schema is refused
/// ([`Error::NewerSchema`]), an older one upgraded (its inline spec and steps are read as they
/// are and moved to their own keys at the next write). The hash's `status` field is the authority on
/// status (a claim moves `queued` to `running` without rewriting the head).
pub(crate) fn decode_run(key: &str, head: &[u8], status: Option<&str>, spec: Option<&[u8]>) -> Result<RunState> {
    let corrupt = |reason: String| Error::Corrupt { key: key.to_string(), reason };
    let mut state = RunState::decode(head).map_err(|e| corrupt(e.to_string()))?;
    if state.schema_version > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            key: key.to_string(),
            found: state.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    if let Some(s) = status.and_then(baton_core::status::parse) {
        state.status = s as i32;
    }
    if state.spec.is_none() {
        let spec = spec.ok_or_else(|| corrupt("the run has no spec".into()))?;
        state.spec = Some(RunSpec::decode(spec).map_err(|e| corrupt(format!("spec: {e}")))?);
    }
    Ok(state)
}

/// Step records as stored in the history list.
pub(crate) fn decode_steps(key: &str, raw: &[Vec<u8>]) -> Result<Vec<StepRecord>> {
    raw.iter()
        .map(|b| {
            StepRecord::decode(b.as_slice()).map_err(|e| Error::Corrupt { key: key.to_string(), reason: e.to_string() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_leaves_spec_and_steps_out_and_decodes_back_with_the_spec() {
        let spec = baton_core::plan::script_spec(&[("echo", "{}")]);
        let state = RunState {
            schema_version: 1,
            run_id: "r".into(),
            spec: Some(spec.clone()),
            steps: vec![StepRecord { step: 0, ..Default::default() }],
            event_seq: 4,
            ..Default::default()
        };
        let head = head_bytes(&state);
        let back = decode_run("k", &head, Some("running"), Some(&spec.encode_to_vec())).unwrap();
        assert_eq!(back.schema_version, SCHEMA_VERSION);
        assert!(back.steps.is_empty());
        assert_eq!(back.spec, Some(spec));
        assert_eq!(back.event_seq, 4);
        assert!(!spec_to_store(&state).is_empty(), "an old-layout run stores its spec on its next write");
        assert!(spec_to_store(&back).is_empty());
        assert!(decode_run("k", &head, None, None).is_err(), "a head without a spec is corrupt");
    }
}
