//! WatchRun: the run's history from its Redis stream, then live events, until the run ends,
//! the client goes away, or the run expires.

use std::pin::Pin;

use baton_core::status::is_terminal;
use baton_proto::v1::RunEvent;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

/// The stream type of WatchRun.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<RunEvent, Status>> + Send>>;

const BATCH: usize = 256;
const BLOCK_MS: usize = 2_000;

/// Streams events of `run_id` with `seq > after_seq`.
pub fn watch(gw: std::sync::Arc<Gateway>, run_id: String, after_seq: u64, permit: OwnedSemaphorePermit) -> EventStream {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(status) = pump(&gw, &run_id, after_seq, &tx).await {
            let _ = tx.send(Err(status)).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

async fn pump(
    gw: &Gateway,
    run_id: &str,
    after_seq: u64,
    tx: &mpsc::Sender<Result<RunEvent, Status>>,
) -> Result<(), Status> {
    // Reading from stream id 0 returns the history at once, then blocks for live events.
    let mut cursor = "0".to_string();
    loop {
        if tx.is_closed() {
            return Ok(());
        }
        let batch = gw.store.events_wait(run_id, &cursor, BLOCK_MS, BATCH).await.map_err(store_error)?;
        if batch.is_empty() {
            match gw.store.load_run(run_id).await.map_err(store_error)? {
                None => return Err(Status::not_found(format!("run {run_id} expired while watched"))),
                // Finished, and its last event was already streamed (or predates after_seq).
                Some(s) if is_terminal(s.status()) => return Ok(()),
                Some(_) => continue,
            }
        }
        for stored in batch {
            cursor = stored.stream_id;
            let (seq, terminal) = (stored.event.seq, is_terminal(stored.event.status()));
            if seq > after_seq && tx.send(Ok(stored.event)).await.is_err() {
                return Ok(()); // The client went away.
            }
            if terminal && ended(gw, run_id, seq).await? {
                return Ok(());
            }
        }
    }
}

/// True if event `seq` is the run's last and the run is terminal (a terminal event in the
/// history may have been followed by a requeue).
async fn ended(gw: &Gateway, run_id: &str, seq: u64) -> Result<bool, Status> {
    let state = gw.store.load_run(run_id).await.map_err(store_error)?;
    Ok(state.is_none_or(|s| is_terminal(s.status()) && s.event_seq <= seq))
}
