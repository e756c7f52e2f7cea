//! Indexes for people and caps: runs waiting for an approval (ListApprovals, per tenant) and
//! runs not known to have ended (active sets: [`keys::active_runs`] per tenant and
//! [`keys::lane_active_runs`] per lane, for their caps). Like every index they are hints:
//! readers re-check each run, and drop the entries that no longer hold.

use redis::AsyncCommands as _;

use crate::{keys, Result, Store};

impl Store {
    /// Lists run `run_id` as waiting for an approval requested at `at_ms`.
    pub async fn approvals_add(&self, tenant: &str, run_id: &str, at_ms: i64) -> Result<()> {
        let cmds = [keys::approvals(tenant), keys::APPROVALS_ALL.to_string()]
            .map(|key| redis::cmd("ZADD").arg(key).arg(at_ms).arg(run_id).clone());
        let _: Vec<i64> = self.each(cmds.into()).await?;
        Ok(())
    }

    /// Drops run `run_id` from the tenant's approvals.
    pub async fn approvals_drop(&self, tenant: &str, run_id: &str) -> Result<()> {
        let cmds = [keys::approvals(tenant), keys::APPROVALS_ALL.to_string()]
            .map(|key| redis::cmd("ZREM").arg(key).arg(run_id).clone());
        let _: Vec<i64> = self.each(cmds.into()).await?;
        Ok(())
    }

    /// Up to `count` of the tenant's runs listed as waiting for an approval, oldest request
    /// first, with the time each was requested; after the entry `after` (a request time and run
    /// id returned before) if given. Entries requested in the same millisecond come in run id order.
    pub async fn approvals_list(
        &self,
        tenant: &str,
        after: Option<(i64, &str)>,
        count: usize,
    ) -> Result<Vec<(String, i64)>> {
        let mut conn = self.conn().await?;
        let min = after.map_or("-inf".to_string(), |(at, _)| at.to_string());
        let mut skip = 0;
        loop {
            // From the cursor's millisecond on; entries of that millisecond up to the cursor's
            // run id were listed before.
            let chunk: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
                .arg(keys::approvals(tenant))
                .arg(&min)
                .arg("+inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(skip)
                .arg(count.max(1))
                .query_async(&mut conn)
                .await?;
            let full = chunk.len() == count.max(1);
            let fresh: Vec<(String, i64)> = chunk
                .into_iter()
                .filter(|(id, at)| after.is_none_or(|(a, last)| *at > a || (*at == a && id.as_str() > last)))
                .collect();
            if !fresh.is_empty() || !full {
                return Ok(fresh);
            }
            skip += count.max(1);
        }
    }

    /// Lists run `run_id` in each of the active sets `sets`; returns how many each lists now, it
    /// included (one round trip for all of them).
    pub async fn active_admit(&self, sets: &[String], run_id: &str, at_ms: i64) -> Result<Vec<u64>> {
        // ZADD then ZCARD of each set (one slot per set), sets side by side.
        let cmds = sets
            .iter()
            .flat_map(|set| {
                [redis::cmd("ZADD").arg(set).arg(at_ms).arg(run_id).clone(), redis::cmd("ZCARD").arg(set).clone()]
            })
            .collect();
        let replies: Vec<u64> = self.each(cmds).await?;
        Ok(replies.chunks(2).map(|pair| pair[1]).collect())
    }

    /// The runs listed in the active set `set` (at most `limit`).
    pub async fn active_list(&self, set: &str, limit: usize) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        Ok(conn.zrange(set, 0, limit.max(1) as isize - 1).await?)
    }

    /// Takes an ended run off its tenant's and its lane's active sets (it may be listed again,
    /// by a requeue).
    pub async fn active_ended(&self, tenant: &str, lane: &str, run_id: &str) -> Result<()> {
        let cmds = [keys::active_runs(tenant), keys::lane_active_runs(lane)]
            .map(|key| redis::cmd("ZREM").arg(key).arg(run_id).clone());
        let _: Vec<i64> = self.each(cmds.into()).await?;
        Ok(())
    }

    /// Drops runs from the active set `set`.
    pub async fn active_drop(&self, set: &str, run_ids: &[String]) -> Result<()> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let _: () = conn.zrem(set, run_ids).await?;
        Ok(())
    }
}
