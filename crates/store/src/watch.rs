//! Live reads of run event streams on a connection of their own. One `XREAD BLOCK` covers every
//! stream asked for, so all of a gateway's watches share one connection instead of each holding
//! a pooled one while its run is quiet (a blocked read would starve the request path). A read
//! can be cut short from any pooled connection with [`Store::unblock`] when another stream is
//! to be added. On a Redis Cluster one `XREAD` cannot span slots, and a blocking read would hold
//! the multiplexed connection every request shares: there the reader polls instead — each
//! stream's `XREAD` without blocking, every [`CLUSTER_POLL`], until one has events or the wait
//! runs out.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands as _, AsyncConnectionConfig};

use crate::runs::decode_event;
use crate::{keys, Result, Store, StoredEvent, RESPONSE_TIMEOUT};

/// How often a reader on a Redis Cluster looks at its streams while they are quiet.
pub const CLUSTER_POLL: Duration = Duration::from_millis(50);

/// Reads many runs' event streams at once: a dedicated connection blocked on one `XREAD`, or,
/// on a Redis Cluster, polls over the store's connection.
pub enum EventReader {
    /// A connection of its own to a single Redis.
    Blocking {
        /// The connection.
        conn: MultiplexedConnection,
        /// Its client id, for [`Store::unblock`].
        client_id: i64,
    },
    /// Non-blocking reads through the cluster connection.
    Polling(Store),
}

/// A position in a run's event stream: a stream entry id (`<ms>-<seq>`) as a comparable pair;
/// `0` is before the first entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamPos(pub u64, pub u64);

impl StreamPos {
    /// Parses an entry id (`<ms>-<seq>`, or `<ms>` alone); `None` if it is not one.
    pub fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }

    /// The entry id, as XREAD and XRANGE take it.
    pub fn id(&self) -> String {
        format!("{}-{}", self.0, self.1)
    }
}

impl EventReader {
    /// A reader for `store`: on a single Redis a connection of its own to `url`, whose replies
    /// may take `block` (the longest wait a read asks for) plus the usual response timeout; on a
    /// cluster, polls through the store.
    pub async fn connect(store: &Store, url: &str, block: Duration) -> Result<Self> {
        if store.is_cluster() {
            return Ok(Self::Polling(store.clone()));
        }
        let client = redis::Client::open(url)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(block + RESPONSE_TIMEOUT));
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        let client_id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut conn).await?;
        Ok(Self::Blocking { conn, client_id })
    }

    /// The blocked connection's client id, for [`Store::unblock`]; -1 for a polling reader
    /// (it looks again within [`CLUSTER_POLL`] anyway).
    pub fn client_id(&self) -> i64 {
        match self {
            Self::Blocking { client_id, .. } => *client_id,
            Self::Polling(_) => -1,
        }
    }

    /// The events of each run in `after` past its position, at most `count` per run, waiting up
    /// to `block` when none has any (or until [`Store::unblock`]). Only runs with new events
    /// are in the answer.
    pub async fn read(
        &mut self,
        after: &[(String, StreamPos)],
        block: Duration,
        count: usize,
    ) -> Result<Vec<(String, Vec<StoredEvent>)>> {
        if after.is_empty() {
            return Ok(Vec::new());
        }
        let stream_keys: Vec<String> = after.iter().map(|(run, _)| keys::events(run)).collect();
        let ids: Vec<String> = after.iter().map(|(_, pos)| pos.id()).collect();
        let runs: HashMap<&str, &str> =
            stream_keys.iter().map(String::as_str).zip(after.iter().map(|(run, _)| run.as_str())).collect();
        let reply: Option<StreamReadReply> = match self {
            Self::Blocking { conn, .. } => {
                let opts = StreamReadOptions::default().block(block.as_millis() as usize).count(count);
                conn.xread_options(&stream_keys, &ids, &opts).await?
            }
            Self::Polling(store) => poll(store, &stream_keys, &ids, block, count).await?,
        };
        let mut out = Vec::new();
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(run) = runs.get(stream.key.as_str()) else { continue };
            let events = stream.ids.iter().map(|e| decode_event(&stream.key, e)).collect::<Result<Vec<_>>>()?;
            out.push((run.to_string(), events));
        }
        Ok(out)
    }
}

/// On a cluster: each stream's `XREAD COUNT` (one per slot, concurrently), again every
/// [`CLUSTER_POLL`] until one has entries or `block` has passed.
async fn poll(
    store: &Store,
    stream_keys: &[String],
    ids: &[String],
    block: Duration,
    count: usize,
) -> Result<Option<StreamReadReply>> {
    let deadline = tokio::time::Instant::now() + block;
    loop {
        let reads = stream_keys
            .iter()
            .zip(ids)
            .map(|(key, id)| redis::cmd("XREAD").arg("COUNT").arg(count).arg("STREAMS").arg(key).arg(id).clone())
            .collect();
        let replies: Vec<Option<StreamReadReply>> = store.each(reads).await?;
        let keys: Vec<_> = replies.into_iter().flatten().flat_map(|r| r.keys).collect();
        if !keys.is_empty() {
            return Ok(Some(StreamReadReply { keys }));
        }
        if tokio::time::Instant::now() + CLUSTER_POLL > deadline {
            return Ok(None);
        }
        tokio::time::sleep(CLUSTER_POLL).await;
    }
}

impl Store {
    /// Ends the blocked read of the connection `client_id` now, as if its wait had run out (a
    /// no-op when it is not blocked).
    pub async fn unblock(&self, client_id: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::cmd("CLIENT").arg("UNBLOCK").arg(client_id).query_async(&mut conn).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::StreamPos;

    #[test]
    fn stream_positions_order_as_redis_orders_entry_ids() {
        assert_eq!(StreamPos::parse("0"), Some(StreamPos(0, 0)));
        assert_eq!(StreamPos::parse("1700000000000-3"), Some(StreamPos(1_700_000_000_000, 3)));
        assert!(StreamPos::parse("1700000000000-10") > StreamPos::parse("1700000000000-9"));
        assert!(StreamPos::parse("1700000000001-0") > StreamPos::parse("1700000000000-99"));
        assert_eq!(StreamPos::parse("x-1"), None);
        assert_eq!(StreamPos(5, 2).id(), "5-2");
    }
}
