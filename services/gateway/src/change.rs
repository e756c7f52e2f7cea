//! Changing a tenant's unleased run on a person's word (an approval, a reconciliation): read
//! the run, let the caller check it and decide the transition, commit by compare-and-set on its
//! fence and event sequence and dispatch what comes next; if the run changed meanwhile (a
//! worker claimed it, the scheduler expired the request), read it again. A stop pending on the
//! run ends it instead. A foreign run is NOT_FOUND.

use std::time::Duration;

use baton_core::machine::Transition;
use baton_proto::v1::RunState;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

const ATTEMPTS: usize = 20;

/// Applies the transition `decide` makes of `run_id` (or its refusal); returns what was
/// committed (the run's stop, if one was pending), with the run as it was read.
pub async fn change_run(
    gw: &Gateway,
    tenant: &str,
    run_id: &str,
    decide: impl Fn(&RunState) -> Result<Transition, Status>,
) -> Result<(Transition, RunState), Status> {
    for _ in 0..ATTEMPTS {
        let snapshot = match gw.store.read_for_update(run_id).await.map_err(store_error)? {
            Some(s) if s.state.tenant == tenant => s,
            _ => return Err(Status::not_found(format!("run {run_id} not found"))),
        };
        let t = decide(&snapshot.state)?;
        if let Some(t) = gw.control.resume(&snapshot, &t, &[]).await.map_err(store_error)? {
            return Ok((t, snapshot.state));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(Status::aborted(format!("run {run_id} kept changing; try again")))
}
