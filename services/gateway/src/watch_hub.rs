//! The gateway's one live reader of run event streams. A WatchRun subscribes here with its run
//! and the stream position its history read reached; one task reads every subscribed stream
//! with a single `XREAD BLOCK` on a Redis connection of its own ([`EventReader`]) and hands each
//! run's new events to that run's watchers. Watches never take a connection from the request
//! path's pool, however many are open: many watchers of one run cost one stream in the read,
//! many runs cost one read. A watcher that falls behind (its queue full) or a read that fails
//! drops the subscription; the watcher then reads what it missed from the pool and subscribes
//! again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton_store::{EventReader, StoredEvent, StreamPos};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// New events of one run, shared by its watchers.
pub type Batch = Arc<Vec<StoredEvent>>;

/// Longest wait of one read; a subscription that misses the cut-short waits at most this long.
const BLOCK: Duration = Duration::from_secs(1);
/// Most events read per run per read.
const PER_RUN: usize = 256;
/// Batches a watcher may have queued before it is dropped (it catches up from the pool).
const WATCHER_QUEUE: usize = 16;
/// Pause before reconnecting after a failed read.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// No reader client is blocked.
const NOT_BLOCKED: i64 = -1;

/// Subscriptions to runs' live events. Cheap to share.
pub struct WatchHub {
    subscribe: mpsc::UnboundedSender<Subscription>,
    /// The reader's client id while its read is blocked, else [`NOT_BLOCKED`].
    blocked: Arc<AtomicI64>,
    store: baton_store::Store,
}

struct Subscription {
    run_id: String,
    after: StreamPos,
    events: mpsc::Sender<Batch>,
}

/// One watched run: where the reader stands in its stream, and who gets its events.
struct Watched {
    pos: StreamPos,
    watchers: Vec<mpsc::Sender<Batch>>,
}

impl WatchHub {
    /// Starts the reader on its own connection to the Redis at `url`, until `stop`.
    pub fn start(url: String, store: baton_store::Store, stop: CancellationToken) -> Arc<Self> {
        let (subscribe, subscriptions) = mpsc::unbounded_channel();
        let blocked = Arc::new(AtomicI64::new(NOT_BLOCKED));
        tokio::spawn(read_loop(url, store.clone(), subscriptions, blocked.clone(), stop));
        Arc::new(Self { subscribe, blocked, store })
    }

    /// Events of `run_id` past `after`, in batches, until the subscription is dropped (the
    /// receiver then ends: read what was missed and subscribe again). Events at or before
    /// `after` may be repeated: a watcher skips what it has seen. `None` once the reader has
    /// stopped (the gateway is shutting down).
    pub async fn subscribe(&self, run_id: &str, after: StreamPos) -> Option<mpsc::Receiver<Batch>> {
        let (events, receiver) = mpsc::channel(WATCHER_QUEUE);
        self.subscribe.send(Subscription { run_id: run_id.to_string(), after, events }).ok()?;
        // Cut the read in progress short so the next one includes this run (once per read).
        let client = self.blocked.swap(NOT_BLOCKED, Ordering::SeqCst);
        if client != NOT_BLOCKED {
            if let Err(e) = self.store.unblock(client).await {
                tracing::debug!(error = %e, "cannot cut the watch read short; the run joins the next one");
            }
        }
        Some(receiver)
    }
}

async fn read_loop(
    url: String,
    store: baton_store::Store,
    mut subscriptions: mpsc::UnboundedReceiver<Subscription>,
    blocked: Arc<AtomicI64>,
    stop: CancellationToken,
) {
    let mut runs: HashMap<String, Watched> = HashMap::new();
    let mut reader: Option<EventReader> = None;
    loop {
        if runs.is_empty() {
            // Nothing watched: wait for a subscription without reading.
            tokio::select! {
                s = subscriptions.recv() => match s {
                    Some(s) => add(&mut runs, s),
                    None => return,
                },
                _ = stop.cancelled() => return,
            }
        }
        while let Ok(s) = subscriptions.try_recv() {
            add(&mut runs, s);
        }
        // Watchers that went away.
        runs.retain(|_, w| {
            w.watchers.retain(|tx| !tx.is_closed());
            !w.watchers.is_empty()
        });
        if runs.is_empty() {
            continue;
        }
        let conn = match &mut reader {
            Some(conn) => conn,
            None => match EventReader::connect(&store, &url, BLOCK).await {
                Ok(conn) => reader.insert(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "watch reader cannot connect to Redis; watchers fall back");
                    runs.clear();
                    if pause(&stop).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let client = conn.client_id();
        if client >= 0 {
            blocked.store(client, Ordering::SeqCst);
        }
        // A subscription sent before the store above did not cut this read short: take it now.
        while let Ok(s) = subscriptions.try_recv() {
            add(&mut runs, s);
        }
        let after: Vec<(String, StreamPos)> = runs.iter().map(|(run, w)| (run.clone(), w.pos)).collect();
        let read = tokio::select! {
            r = conn.read(&after, BLOCK, PER_RUN) => r,
            _ = stop.cancelled() => return,
        };
        blocked.store(NOT_BLOCKED, Ordering::SeqCst);
        match read {
            Ok(batches) => {
                for (run, events) in batches {
                    if let Some(watched) = runs.get_mut(&run) {
                        fan_out(watched, events);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, runs = runs.len(), "watch read failed; watchers fall back and resubscribe");
                reader = None;
                runs.clear();
                if pause(&stop).await {
                    return;
                }
            }
        }
    }
}

/// Adds a watcher; the run's stream is read from the earliest position any of its watchers needs.
fn add(runs: &mut HashMap<String, Watched>, s: Subscription) {
    let watched = runs.entry(s.run_id).or_insert(Watched { pos: s.after, watchers: Vec::new() });
    watched.pos = watched.pos.min(s.after);
    watched.watchers.push(s.events);
}

/// Hands `events` to every watcher of the run; one whose queue is full is dropped (it catches up).
fn fan_out(watched: &mut Watched, events: Vec<StoredEvent>) {
    if let Some(last) = events.last().and_then(|e| StreamPos::parse(&e.stream_id)) {
        watched.pos = watched.pos.max(last);
    }
    let batch: Batch = Arc::new(events);
    watched.watchers.retain(|tx| tx.try_send(batch.clone()).is_ok());
}

/// Waits before reconnecting; true if `stop` fired meanwhile.
async fn pause(stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(RECONNECT_AFTER) => false,
        _ = stop.cancelled() => true,
    }
}
