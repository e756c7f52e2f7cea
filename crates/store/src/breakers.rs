//! Per-tool circuit breakers shared by every worker (`baton:breaker:{tool}`). A call asks
//! [`Store::breaker_allow`] first; failures (and a probe's result) are reported with
//! [`Store::breaker_record`]. Both are single Lua calls, so two workers never both probe.

use redis::Value;

use crate::{keys, scripts::scripts, Result, Store};

/// Whether a call may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerGate {
    /// Closed: call.
    Closed,
    /// Half open: this call is the probe; report its result.
    Probe,
    /// Open: do not call before this time (ms since epoch).
    Open(i64),
    /// Half open, and another call is the probe: do not call now; its result decides soon.
    Probing,
}

/// Thresholds of a breaker (`[breakers]`).
#[derive(Debug, Clone, Copy)]
pub struct BreakerLimits {
    /// Failures within `window_ms` that open it.
    pub failures: u32,
    /// The failure window.
    pub window_ms: u64,
    /// How long it stays open.
    pub cooldown_ms: u64,
}

/// A breaker as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BreakerView {
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Failures in the current window.
    pub failures: u32,
    /// While open or probing: until when.
    pub until_ms: i64,
}

impl Store {
    /// Asks tool `tool`'s breaker whether a call may go out at `now_ms`; a probe may take up to
    /// `probe_ms` before another one is let through.
    pub async fn breaker_allow(&self, tool: &str, now_ms: i64, probe_ms: u64) -> Result<BreakerGate> {
        let mut conn = self.conn().await?;
        let reply: Vec<Value> =
            scripts().breaker_allow.key(keys::breaker(tool)).arg(now_ms).arg(probe_ms).invoke_async(&mut conn).await?;
        let state: String = reply.first().map(redis::from_redis_value_ref).transpose()?.unwrap_or_default();
        let until: i64 = reply.get(1).map(redis::from_redis_value_ref).transpose()?.unwrap_or(0);
        Ok(match state.as_str() {
            "open" => BreakerGate::Open(until),
            "probing" => BreakerGate::Probing,
            "probe" => BreakerGate::Probe,
            _ => BreakerGate::Closed,
        })
    }

    /// Records a call's success or failure; returns the breaker's state after it.
    pub async fn breaker_record(
        &self,
        tool: &str,
        ok: bool,
        now_ms: i64,
        limits: BreakerLimits,
        failure_id: &str,
    ) -> Result<String> {
        let mut conn = self.conn().await?;
        Ok(scripts()
            .breaker_record
            .key(keys::breaker(tool))
            .key(keys::breaker_failures(tool))
            .arg(now_ms)
            .arg(if ok { 1 } else { 0 })
            .arg(limits.failures)
            .arg(limits.window_ms)
            .arg(limits.cooldown_ms)
            .arg(failure_id)
            .invoke_async(&mut conn)
            .await?)
    }

    /// Tool `tool`'s breaker now (`window_ms` bounds the failures counted).
    pub async fn breaker_view(&self, tool: &str, now_ms: i64, window_ms: u64) -> Result<BreakerView> {
        let mut conn = self.conn().await?;
        let (state, until, failures): (Option<String>, Option<i64>, u32) = redis::pipe()
            .hget(keys::breaker(tool), "state")
            .hget(keys::breaker(tool), "until")
            .zcount(keys::breaker_failures(tool), now_ms - window_ms as i64, "+inf")
            .query_async(&mut conn)
            .await?;
        Ok(BreakerView { state: state.unwrap_or_else(|| "closed".into()), failures, until_ms: until.unwrap_or(0) })
    }
}
