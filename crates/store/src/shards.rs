//! Who takes which shard. Reapers and schedulers run several at once without a singleton: each
//! beats into its role's registry (`baton:{fleet}:members:<role>`, the Redis server's clock) and
//! holds leases on index shards (`baton:{idx:NN}:owner:<role>`), about an equal share each; a
//! member that stops renewing loses its shards when their leases expire, and the others take
//! them. The fleet-wide jobs of a role are done by the holder of shard 0. Workers share the
//! partitions of their lane's task topic the same way (role `worker-<lane>`).

use crate::{keys, scripts::scripts, Result, Store};

impl Store {
    /// Records that `member` of `role` is alive; members silent for `ttl_ms` are forgotten, and
    /// so are other members whose id begins with `earlier` (instances this one replaces).
    /// Returns the ids of the role's members alive, in id order.
    pub async fn member_beat(
        &self,
        role: &str,
        member: &str,
        ttl_ms: u64,
        earlier: Option<&str>,
    ) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        let mut members: Vec<String> = scripts()
            .member_beat
            .key(keys::members(role))
            .arg(member)
            .arg(ttl_ms)
            .arg(earlier.unwrap_or_default())
            .invoke_async(&mut conn)
            .await?;
        members.sort_unstable();
        Ok(members)
    }

    /// Removes `member` from `role`'s registry (a clean stop): the others count it out at once.
    pub async fn member_forget(&self, role: &str, member: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::cmd("ZREM").arg(keys::members(role)).arg(member).query_async(&mut conn).await?;
        Ok(())
    }

    /// Takes, or renews, `member`'s lease on `shard` for `role`, for `ttl_ms`; a lease held by
    /// an id beginning with `earlier` (an instance this one replaces) is taken too. True if
    /// `member` holds it now.
    pub async fn shard_take(
        &self,
        role: &str,
        shard: u16,
        member: &str,
        ttl_ms: u64,
        earlier: Option<&str>,
    ) -> Result<bool> {
        let mut conn = self.conn().await?;
        let held: i64 = scripts()
            .shard_take
            .key(keys::shard_owner(shard, role))
            .arg(member)
            .arg(ttl_ms)
            .arg(earlier.unwrap_or_default())
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    /// Gives `member`'s lease on `shard` back (if it still holds it), for another to take.
    pub async fn shard_release(&self, role: &str, shard: u16, member: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = scripts().release.key(keys::shard_owner(shard, role)).arg(member).invoke_async(&mut conn).await?;
        Ok(())
    }
}
