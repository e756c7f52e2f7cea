//! Baton's domain logic: run statuses, spec admission, the step state machine and built-in tool rules.
//!
//! Everything here is pure: no I/O, no async, no clocks (callers pass `now_ms`). The services
//! decide *when* to call these functions; this crate decides *what* a run may do next.

pub mod admission;
pub mod events;
pub mod machine;
pub mod plan;
pub mod retry;
pub mod status;
pub mod tools;

pub use baton_proto::v1;

/// Version of the `RunState` checkpoint layout written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// The idempotency key a tool receives for step `step` of run `run_id`: `<run>:<step>`.
///
/// Retries of the same step keep the same key, so an effect recorded under it is never repeated.
pub fn step_idempotency_key(run_id: &str, step: u32) -> String {
    format!("{run_id}:{step}")
}
