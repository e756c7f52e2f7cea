//! Per-tenant indexes for people and caps: runs waiting for an approval (ListApprovals) and
//! runs not known to have ended (the tenant's cap on active runs). Like every index they are
//! hints: readers re-check each run, and drop the entries that no longer hold.

use redis::AsyncCommands as _;

use crate::{keys, Result, Store};

impl Store {
    /// Lists run `run_id` as waiting for an approval requested at `at_ms`.
    pub async fn approvals_add(&self, tenant: &str, run_id: &str, at_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let () = redis::pipe()
            .zadd(keys::approvals(tenant), run_id, at_ms)
            .ignore()
            .zadd(keys::APPROVALS_ALL, run_id, at_ms)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Drops run `run_id` from the tenant's approvals.
    pub async fn approvals_drop(&self, tenant: &str, run_id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let () = redis::pipe()
            .zrem(keys::approvals(tenant), run_id)
            .ignore()
            .zrem(keys::APPROVALS_ALL, run_id)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The tenant's runs listed as waiting for an approval, oldest request first.
    pub async fn approvals_list(&self, tenant: &str, limit: usize) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        Ok(conn.zrange(keys::approvals(tenant), 0, limit.max(1) as isize - 1).await?)
    }

    /// Lists run `run_id` as active for its tenant; returns how many are listed now, it included
    /// (one round trip).
    pub async fn active_admit(&self, tenant: &str, run_id: &str, at_ms: i64) -> Result<u64> {
        let mut conn = self.conn().await?;
        let key = keys::active_runs(tenant);
        let (count,): (u64,) =
            redis::pipe().zadd(&key, run_id, at_ms).ignore().zcard(&key).query_async(&mut conn).await?;
        Ok(count)
    }

    /// The runs listed as active for the tenant (at most `limit`).
    pub async fn active_list(&self, tenant: &str, limit: usize) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        Ok(conn.zrange(keys::active_runs(tenant), 0, limit.max(1) as isize - 1).await?)
    }

    /// Drops runs that ended from the tenant's active list.
    pub async fn active_drop(&self, tenant: &str, run_ids: &[String]) -> Result<()> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let _: () = conn.zrem(keys::active_runs(tenant), run_ids).await?;
        Ok(())
    }
}
