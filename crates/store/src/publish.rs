//! Which of a run's events are known to be on `baton.events`. Every event is committed to the
//! run's Redis stream first; producing it to Kafka is off the step's critical path, and the
//! `pub` field of the run hash records how far delivery was acknowledged. Whoever gives a run up
//! (a worker ending its slice, the gateway after a submit) marks `pub` once its deliveries are
//! acknowledged; whoever recovers a run (the reaper) re-publishes the events after `pub` first.

use baton_proto::v1::RunEvent;

use crate::{keys, scripts::scripts, Result, Store};

impl Store {
    /// Records that the run's events up to `seq` reached Kafka. Returns the run's last event
    /// sequence number (`None` if the run is gone).
    pub async fn mark_published(&self, run_id: &str, seq: u64) -> Result<Option<u64>> {
        let mut conn = self.conn().await?;
        let last: i64 = scripts().published.key(keys::run(run_id)).arg(seq).invoke_async(&mut conn).await?;
        Ok(u64::try_from(last).ok())
    }

    /// The events of a run not yet known to be on Kafka, in order (empty if none or the run is gone).
    pub async fn unpublished_events(&self, run_id: &str) -> Result<Vec<RunEvent>> {
        let mut conn = self.conn().await?;
        let (last, published): (Option<u64>, Option<u64>) =
            redis::cmd("HMGET").arg(keys::run(run_id)).arg("seq").arg("pub").query_async(&mut conn).await?;
        let (Some(last), published) = (last, published.unwrap_or(0)) else { return Ok(Vec::new()) };
        if published >= last {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let batch = self.events_after(run_id, after.as_deref(), 512).await?;
            let Some(tail) = batch.last() else { break };
            after = Some(tail.stream_id.clone());
            out.extend(batch.into_iter().map(|e| e.event).filter(|e| e.seq > published));
        }
        Ok(out)
    }
}
