//! WatchRun: the run's history from its Redis stream (short reads through the pool), then live
//! events from the gateway's one stream reader ([`crate::watch_hub`]), until the run ends, the
//! client goes away, or the run expires.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use baton_core::status::is_terminal;
use baton_proto::v1::RunEvent;
use baton_store::{StoredEvent, StreamPos};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::Status;

use crate::convert::store_error;
use crate::Gateway;

/// The stream type of WatchRun.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<RunEvent, Status>> + Send>>;

/// Events read per history page.
const PAGE: usize = 256;
/// After this long without an event, the run is looked at: has it expired, or ended?
const QUIET_CHECK: Duration = Duration::from_secs(10);

/// Streams events of `run_id` with `seq > after_seq`.
pub fn watch(gw: Arc<Gateway>, run_id: String, after_seq: u64, permit: OwnedSemaphorePermit) -> EventStream {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let _permit = permit;
        let mut watcher = Watcher { gw: &gw, run_id: &run_id, after_seq, tx: &tx, pos: StreamPos::default(), seq: 0 };
        if let Err(status) = watcher.pump().await {
            let _ = tx.send(Err(status)).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Whether the watch goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    More,
    Done,
}

/// One watch: where it stands in the run's stream.
struct Watcher<'a> {
    gw: &'a Gateway,
    run_id: &'a str,
    after_seq: u64,
    tx: &'a mpsc::Sender<Result<RunEvent, Status>>,
    /// The last stream entry handled (sent, or skipped as at or before `after_seq`).
    pos: StreamPos,
    /// Its event's sequence number.
    seq: u64,
}

impl Watcher<'_> {
    async fn pump(&mut self) -> Result<(), Status> {
        let (hub, tx) = (self.gw.watch_hub.clone(), self.tx);
        loop {
            if self.catch_up().await? == Flow::Done {
                return Ok(());
            }
            let Some(mut live) = hub.subscribe(self.run_id, self.pos).await else {
                return Err(Status::unavailable("the gateway is shutting down: watch again"));
            };
            let mut quiet_until = Instant::now() + QUIET_CHECK;
            loop {
                tokio::select! {
                    batch = live.recv() => {
                        // Dropped by the reader (behind, or a failed read): catch up and subscribe again.
                        let Some(batch) = batch else { break };
                        for stored in batch.iter() {
                            if self.handle(stored).await? == Flow::Done {
                                return Ok(());
                            }
                        }
                        quiet_until = Instant::now() + QUIET_CHECK;
                    }
                    _ = tx.closed() => return Ok(()), // The client went away.
                    _ = tokio::time::sleep_until(quiet_until) => {
                        match self.gw.store.load_run(self.run_id).await.map_err(store_error)? {
                            None => return Err(Status::not_found(format!("run {} expired while watched", self.run_id))),
                            // Finished, and its last event was already handled.
                            Some(s) if is_terminal(s.status()) && s.event_seq <= self.seq => return Ok(()),
                            Some(_) => {}
                        }
                        quiet_until = Instant::now() + QUIET_CHECK;
                    }
                }
            }
        }
    }

    /// Handles what the stream holds past `pos`, page by page, from the pool.
    async fn catch_up(&mut self) -> Result<Flow, Status> {
        loop {
            let after = (self.pos != StreamPos::default()).then(|| self.pos.id());
            let page = self.gw.store.events_after(self.run_id, after.as_deref(), PAGE).await.map_err(store_error)?;
            for stored in &page {
                if self.handle(stored).await? == Flow::Done {
                    return Ok(Flow::Done);
                }
            }
            if page.len() < PAGE {
                return Ok(Flow::More);
            }
        }
    }

    /// Sends one event unless it was handled already or is at or before `after_seq`; `Done` when
    /// the client went away or the run ended with it.
    async fn handle(&mut self, stored: &StoredEvent) -> Result<Flow, Status> {
        let Some(pos) = StreamPos::parse(&stored.stream_id) else { return Ok(Flow::More) };
        if pos <= self.pos {
            return Ok(Flow::More);
        }
        self.pos = pos;
        let (seq, terminal) = (stored.event.seq, is_terminal(stored.event.status()));
        self.seq = seq;
        if seq > self.after_seq && self.tx.send(Ok(stored.event.clone())).await.is_err() {
            return Ok(Flow::Done); // The client went away.
        }
        if terminal && ended(self.gw, self.run_id, seq).await? {
            return Ok(Flow::Done);
        }
        Ok(Flow::More)
    }
}

/// True if event `seq` is the run's last and the run is terminal (a terminal event in the
/// history may have been followed by a requeue).
async fn ended(gw: &Gateway, run_id: &str, seq: u64) -> Result<bool, Status> {
    let state = gw.store.load_run(run_id).await.map_err(store_error)?;
    Ok(state.is_none_or(|s| is_terminal(s.status()) && s.event_seq <= seq))
}
