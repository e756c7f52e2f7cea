//! What admission control reads and writes in Redis: each tenant's submit token bucket (one Lua
//! call, shared by every gateway) and each lane's consumer lag as the reaper last read it.

use std::collections::BTreeMap;

use redis::AsyncCommands as _;

use crate::scripts::scripts;
use crate::{keys, Result, Store};

/// A submit bucket's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// A token was taken; this many whole tokens are left.
    Taken(u64),
    /// Not enough tokens: try again in this many milliseconds.
    Empty(u64),
}

impl Store {
    /// Takes a submit token from `tenant`'s bucket (`rate` per second, `burst` deep), leaving at
    /// least `keep` tokens behind (a low-priority submit keeps half the burst for the others).
    pub async fn take_submit_token(
        &self,
        tenant: &str,
        now_ms: i64,
        rate: u32,
        burst: u32,
        keep: u32,
    ) -> Result<Bucket> {
        let mut conn = self.conn().await?;
        let (taken, n): (i64, u64) = scripts()
            .rate_take
            .key(keys::submit_bucket(tenant))
            .arg(now_ms)
            .arg(rate.max(1))
            .arg(burst.max(rate).max(1))
            .arg(keep)
            .invoke_async(&mut conn)
            .await?;
        Ok(if taken == 1 { Bucket::Taken(n) } else { Bucket::Empty(n.max(1)) })
    }

    /// Records `lane`'s consumer lag read at `at_ms` (the reaper, after each sample).
    pub async fn set_lane_lag(&self, lane: &str, lag: u64, at_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: () = conn.hset(keys::LANE_LAG, lane, format!("{lag}|{at_ms}")).await?;
        Ok(())
    }

    /// Every lane's last recorded consumer lag and when it was read.
    pub async fn lane_lags(&self) -> Result<BTreeMap<String, (u64, i64)>> {
        let mut conn = self.conn().await?;
        let raw: BTreeMap<String, String> = conn.hgetall(keys::LANE_LAG).await?;
        Ok(raw
            .into_iter()
            .filter_map(|(lane, v)| {
                let (lag, at) = v.split_once('|')?;
                Some((lane, (lag.parse().ok()?, at.parse().ok()?)))
            })
            .collect())
    }
}
