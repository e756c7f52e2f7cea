//! Run records: creating the first checkpoint, idempotent submit keys, reading checkpoints and
//! step history, listing a tenant's runs, and reading a run's event stream.

use baton_core::status;
use baton_proto::v1::{RunEvent, RunState, RunStatus, StepRecord};
use prost::Message as _;
use redis::streams::{StreamId, StreamRangeReply};
use redis::AsyncCommands as _;

use crate::layout::{decode_run, decode_steps, head_bytes};
use crate::{keys, scripts::scripts, Error, Result, Store};

/// What an idempotency key reservation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key was free and now maps to the given run id.
    New,
    /// The key already maps to a run, submitted with the given spec fingerprint.
    Existing {
        /// The run the key points at.
        run_id: String,
        /// Fingerprint of the spec first submitted with the key.
        fingerprint: String,
    },
}

/// One event read back from a run's stream.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Redis stream entry id, to resume reading after it.
    pub stream_id: String,
    /// The event.
    pub event: RunEvent,
}

/// A run as GetRun shows it: the checkpoint, how many steps it has recorded, and the latest.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The checkpoint, spec attached.
    pub state: RunState,
    /// Steps recorded so far.
    pub steps_total: u64,
    /// The latest recorded steps, oldest first.
    pub latest: Vec<StepRecord>,
}

/// HMGET state/status, GET spec, LLEN steps, LRANGE latest steps.
type ViewReply = ((Option<Vec<u8>>, Option<String>), Option<Vec<u8>>, u64, Vec<Vec<u8>>);

/// A page of ListRuns.
#[derive(Debug, Clone, Default)]
pub struct RunPage {
    /// Runs (without their steps), newest first.
    pub runs: Vec<RunView>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<String>,
}

const LIST_CHUNK: isize = 256;
const LIST_SCAN_LIMIT: usize = 8192;

impl Store {
    /// Maps `tenant`/`key` to `run_id` unless it already maps to a run.
    pub async fn reserve_idempotency(
        &self,
        tenant: &str,
        key: &str,
        run_id: &str,
        fingerprint: &str,
        ttl_secs: u64,
    ) -> Result<Reservation> {
        let mut conn = self.conn().await?;
        let k = keys::idempotency(tenant, key);
        let set: Option<String> = redis::cmd("SET")
            .arg(&k)
            .arg(format!("{run_id} {fingerprint}"))
            .arg("NX")
            .arg("EX")
            .arg(ttl_secs)
            .query_async(&mut conn)
            .await?;
        if set.is_some() {
            return Ok(Reservation::New);
        }
        let value: Option<String> = conn.get(&k).await?;
        let value = value.ok_or_else(|| Error::Corrupt { key: k.clone(), reason: "vanished while read".into() })?;
        parse_reservation(&k, &value)
    }

    /// What `tenant`/`key` is reserved for, without reserving it: `None` if the key is free.
    pub async fn idempotency_lookup(&self, tenant: &str, key: &str) -> Result<Option<Reservation>> {
        let mut conn = self.conn().await?;
        let k = keys::idempotency(tenant, key);
        let value: Option<String> = conn.get(&k).await?;
        value.map(|v| parse_reservation(&k, &v)).transpose()
    }

    /// Writes the first checkpoint, the spec and the first event of a run, unless it exists.
    /// Returns true if created.
    pub async fn create_run(&self, state: &RunState, event: &RunEvent) -> Result<bool> {
        let mut conn = self.conn().await?;
        let r = &state.run_id;
        let spec = state.spec.clone().unwrap_or_default();
        let mut invocation = scripts().create.prepare_invoke();
        invocation
            .key(keys::run(r))
            .key(keys::events(r))
            .key(keys::spec(r))
            .arg(head_bytes(state))
            .arg(status::name(state.status()))
            .arg(&state.tenant)
            .arg(&state.lane)
            .arg(state.created_at_ms)
            .arg(state.event_seq)
            .arg(spec.encode_to_vec())
            .arg(baton_core::plan::kind_name(&spec))
            .arg(event.encode_to_vec());
        // An admitted run must not vanish in a failover after SubmitRun answered.
        let created: i64 = self.write_acked(&mut conn, &scripts().create, &invocation).await?;
        if created == 1 {
            let _: () = conn.zadd(keys::tenant_runs(&state.tenant), r, state.created_at_ms).await?;
        }
        Ok(created == 1)
    }

    /// The checkpoint of a run (spec attached), with its current status, or `None` if unknown.
    pub async fn load_run(&self, run_id: &str) -> Result<Option<RunState>> {
        Ok(self.run_view(run_id, 0).await?.map(|v| v.state))
    }

    /// A run's status, without decoding its checkpoint; `None` if it does not exist.
    pub async fn run_status(&self, run_id: &str) -> Result<Option<RunStatus>> {
        let mut conn = self.conn().await?;
        let name: Option<String> = conn.hget(keys::run(run_id), "status").await?;
        name.map(|n| {
            status::parse(&n).ok_or_else(|| Error::Corrupt { key: keys::run(run_id), reason: format!("status {n:?}") })
        })
        .transpose()
    }

    /// The statuses of several runs in one round trip (`None`: the run does not exist).
    pub async fn run_statuses(&self, run_ids: &[String]) -> Result<Vec<Option<RunStatus>>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let cmds = run_ids.iter().map(|id| redis::cmd("HGET").arg(keys::run(id)).arg("status").clone()).collect();
        let names: Vec<Option<String>> = self.each(cmds).await?;
        Ok(names.iter().map(|n| n.as_deref().and_then(status::parse)).collect())
    }

    /// The checkpoint of a run with its step count and its latest `latest` steps.
    pub async fn run_view(&self, run_id: &str, latest: usize) -> Result<Option<RunView>> {
        let mut conn = self.conn().await?;
        let k = keys::run(run_id);
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(&k).arg("state").arg("status");
        pipe.cmd("GET").arg(keys::spec(run_id));
        pipe.cmd("LLEN").arg(keys::steps(run_id));
        if latest > 0 {
            pipe.cmd("LRANGE").arg(keys::steps(run_id)).arg(-(latest as i64)).arg(-1);
        } else {
            pipe.cmd("LRANGE").arg(keys::steps(run_id)).arg(1).arg(0);
        }
        let ((head, status_name), spec, listed, tail): ViewReply = pipe.query_async(&mut conn).await?;
        let Some(head) = head else { return Ok(None) };
        let state = decode_run(&k, &head, status_name.as_deref(), spec.as_deref())?;
        let mut latest_steps = decode_steps(&keys::steps(run_id), &tail)?;
        // An old-layout checkpoint keeps its steps inline until its next write.
        let inline = state.steps.len();
        latest_steps.extend(state.steps.iter().rev().take(latest).rev().cloned());
        let keep_from = latest_steps.len().saturating_sub(latest);
        latest_steps.drain(..keep_from);
        Ok(Some(RunView { steps_total: listed + inline as u64, latest: latest_steps, state }))
    }

    /// Up to `count` recorded steps of a run from index `start` (0 = the first step), and the
    /// number of steps recorded.
    pub async fn steps_page(&self, run_id: &str, start: u64, count: usize) -> Result<(Vec<StepRecord>, u64)> {
        let Some(view) = self.run_view(run_id, 0).await? else { return Ok((Vec::new(), 0)) };
        if !view.state.steps.is_empty() {
            // Old layout: the steps are inline in the checkpoint.
            let page = view.state.steps.iter().skip(start as usize).take(count).cloned().collect();
            return Ok((page, view.steps_total));
        }
        let mut conn = self.conn().await?;
        let end = start as i64 + count as i64 - 1;
        let raw: Vec<Vec<u8>> =
            redis::cmd("LRANGE").arg(keys::steps(run_id)).arg(start as i64).arg(end).query_async(&mut conn).await?;
        Ok((decode_steps(&keys::steps(run_id), &raw)?, view.steps_total))
    }

    /// A page of `tenant`'s runs, newest first, optionally only those in `only`.
    /// `after` is the `next` of the previous page.
    pub async fn list_runs(
        &self,
        tenant: &str,
        only: Option<RunStatus>,
        page_size: usize,
        after: Option<&str>,
    ) -> Result<RunPage> {
        let mut conn = self.conn().await?;
        let index = keys::tenant_runs(tenant);
        let mut cursor = after.and_then(parse_cursor);
        let mut page = RunPage::default();
        let mut scanned = 0usize;
        loop {
            let max = cursor.as_ref().map_or("+inf".to_string(), |(s, _)| s.to_string());
            let chunk: Vec<(String, i64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&index)
                .arg(&max)
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(LIST_CHUNK)
                .query_async(&mut conn)
                .await?;
            let fresh: Vec<(String, i64)> = chunk
                .iter()
                .filter(|(id, score)| cursor.as_ref().is_none_or(|(s, last)| score < s || (score == s && id < last)))
                .cloned()
                .collect();
            if fresh.is_empty() {
                return Ok(page);
            }
            // Three reads per run, each in its run's slot.
            let mut cmds = Vec::new();
            for (id, _) in &fresh {
                cmds.push(redis::cmd("HMGET").arg(keys::run(id)).arg("state").arg("status").clone());
                cmds.push(redis::cmd("GET").arg(keys::spec(id)).clone());
                cmds.push(redis::cmd("LLEN").arg(keys::steps(id)).clone());
            }
            type Row = ((Option<Vec<u8>>, Option<String>), Option<Vec<u8>>, u64);
            let rows: Vec<Row> = {
                let flat: Vec<redis::Value> = self.each(cmds).await?;
                let mut rows = Vec::new();
                for row in flat.chunks(3) {
                    let cell = |i: usize| {
                        row.get(i).ok_or_else(|| Error::Corrupt { key: index.clone(), reason: "short reply".into() })
                    };
                    rows.push((
                        redis::from_redis_value_ref(cell(0)?)?,
                        redis::from_redis_value_ref(cell(1)?)?,
                        redis::from_redis_value_ref(cell(2)?)?,
                    ));
                }
                rows
            };
            for ((id, score), ((bytes, status_name), spec, listed)) in fresh.into_iter().zip(rows) {
                scanned += 1;
                cursor = Some((score, id.clone()));
                let Some(bytes) = bytes else {
                    // Expired past retention: drop the stale index entry.
                    let _: () = conn.zrem(&index, &id).await?;
                    continue;
                };
                let state = decode_run(&keys::run(&id), &bytes, status_name.as_deref(), spec.as_deref())?;
                if only.is_none_or(|s| state.status() == s) {
                    let steps_total = listed + state.steps.len() as u64;
                    page.runs.push(RunView { state, steps_total, latest: Vec::new() });
                }
                if page.runs.len() >= page_size || scanned >= LIST_SCAN_LIMIT {
                    page.next = cursor.as_ref().map(|(s, id)| format!("{s}:{id}"));
                    return Ok(page);
                }
            }
        }
    }

    /// Events of a run after stream entry `after` (`None`: from the start), at most `count`.
    pub async fn events_after(&self, run_id: &str, after: Option<&str>, count: usize) -> Result<Vec<StoredEvent>> {
        let mut conn = self.conn().await?;
        let k = keys::events(run_id);
        let start = after.map_or("-".to_string(), |id| format!("({id}"));
        let reply: StreamRangeReply = conn.xrange_count(&k, start, "+", count).await?;
        reply.ids.iter().map(|e| decode_event(&k, e)).collect()
    }
}

/// An idempotency key's value, `<run id> <fingerprint>`, as an existing reservation.
fn parse_reservation(key: &str, value: &str) -> Result<Reservation> {
    let (run_id, fingerprint) = value
        .split_once(' ')
        .ok_or_else(|| Error::Corrupt { key: key.to_string(), reason: format!("bad value {value:?}") })?;
    Ok(Reservation::Existing { run_id: run_id.to_string(), fingerprint: fingerprint.to_string() })
}

fn parse_cursor(token: &str) -> Option<(i64, String)> {
    let (score, id) = token.split_once(':')?;
    Some((score.parse().ok()?, id.to_string()))
}

/// Decodes one entry of a run's event stream.
pub(crate) fn decode_event(key: &str, entry: &StreamId) -> Result<StoredEvent> {
    let bytes: Vec<u8> = entry
        .get("e")
        .ok_or_else(|| Error::Corrupt { key: key.to_string(), reason: format!("entry {} has no event", entry.id) })?;
    let event = RunEvent::decode(bytes.as_slice())
        .map_err(|e| Error::Corrupt { key: key.to_string(), reason: e.to_string() })?;
    Ok(StoredEvent { stream_id: entry.id.clone(), event })
}
