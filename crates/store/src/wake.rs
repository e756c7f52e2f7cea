//! Wake-ups for idle consumers. A consumer with nothing to do pauses its partitions, so an idle
//! fleet sends the broker no fetches; whoever produces a task or a retry publishes the topic's
//! name on the Redis channel `baton:wake`, and paused consumers of that topic resume at once.

use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;

use crate::{keys, Result, Store};

impl Store {
    /// Tells paused consumers of `topic` that it has new records.
    pub async fn wake(&self, topic: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::cmd("PUBLISH").arg(keys::WAKE).arg(topic).query_async(&mut conn).await?;
        Ok(())
    }
}

/// Subscribes to wake-ups on the Redis at `url`: topic names arrive on the receiver. The
/// subscription reconnects by itself and ends when the receiver is dropped.
pub fn subscribe_wakes(url: &str) -> Result<mpsc::Receiver<String>> {
    let client = redis::Client::open(url)?;
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        while !tx.is_closed() {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.subscribe(keys::WAKE).await.is_ok() {
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let Ok(topic) = message.get_payload::<String>() else { continue };
                            // A full channel already holds a wake-up: dropping this one loses nothing.
                            if tx.try_send(topic).is_err() && tx.is_closed() {
                                return;
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "wake-up subscription unavailable, retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(rx)
}
