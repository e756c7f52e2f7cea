//! Dead letters as the AdminService reads them. A run's letter lives in its own slot
//! (`baton:letter:{R}`), written by the same atomic commit that ends the run `dead_lettered`
//! (see `lua/commit.lua`) and expiring with the run; a requeue's update takes it away in the
//! same way. The time index `baton:dlq:by-time` is written *before* that commit, so a crash
//! never leaves a letter unlisted; a listing re-checks the run and drops only entries that can
//! no longer become a letter. The letter's `sent` flag records that its `baton.tasks.dlq`
//! record was delivered; until then the run keeps its in-flight entry and the reaper re-sends it.

use baton_proto::v1::DeadLetter;
use prost::Message as _;
use redis::AsyncCommands as _;

use crate::{keys, scripts::scripts, Error, Result, Store};

/// One page of dead letters, oldest first.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterPage {
    /// The letters.
    pub letters: Vec<DeadLetter>,
    /// Where the next page starts (`<dead_at_ms>/<run id>` of the last letter), if there may be more.
    pub next: Option<String>,
}

/// Index entries read per round trip while listing.
const LIST_CHUNK: usize = 256;
/// Most index entries one listing looks at (a tenant filter may skip many).
const LIST_SCAN_LIMIT: usize = 8192;

impl Store {
    /// Lists run `run_id`'s letter in the time index, ahead of the commit that writes it.
    pub async fn dead_letter_index(&self, run_id: &str, dead_at_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: () = conn.zadd(keys::DEAD_LETTERS_BY_TIME, run_id, dead_at_ms).await?;
        Ok(())
    }

    /// The dead letter of a run, if any, and whether its topic record was delivered.
    pub async fn dead_letter_get(&self, run_id: &str) -> Result<Option<(DeadLetter, bool)>> {
        let mut conn = self.conn().await?;
        let (letter, sent): (Option<Vec<u8>>, Option<i64>) =
            redis::cmd("HMGET").arg(keys::dead_letter(run_id)).arg("letter").arg("sent").query_async(&mut conn).await?;
        if let Some(bytes) = letter {
            return Ok(Some((decode(&keys::dead_letter(run_id), &bytes)?, sent == Some(1))));
        }
        let legacy: Option<Vec<u8>> = conn.hget(keys::LEGACY_DEAD_LETTERS, run_id).await?;
        legacy.map(|b| decode(keys::LEGACY_DEAD_LETTERS, &b).map(|l| (l, true))).transpose()
    }

    /// Records that the run's letter reached the dead-letter topic (nothing if it is gone).
    pub async fn dead_letter_sent(&self, run_id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = scripts().letter_sent.key(keys::dead_letter(run_id)).invoke_async(&mut conn).await?;
        Ok(())
    }

    /// Up to `limit` dead letters after `after` (a page's `next`), oldest first, optionally of
    /// one tenant. Reads at most a bounded stretch of the index per call, and the letters of a
    /// stretch in one batch.
    pub async fn dead_letters(
        &self,
        tenant: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<DeadLetterPage> {
        let limit = limit.max(1);
        let (mut from, mut skip_through) = match after.and_then(|a| a.split_once('/')) {
            Some((score, id)) => (score.parse::<i64>().unwrap_or(0), Some(id.to_string())),
            None => (i64::MIN, None),
        };
        let mut page = DeadLetterPage::default();
        let mut scanned = 0;
        // Entries at the cursor's score already seen: more than a chunk of them share it only
        // when that many runs were dead-lettered in the same millisecond.
        let mut offset = 0;
        while scanned < LIST_SCAN_LIMIT {
            let entries: Vec<(String, i64)> = {
                let mut conn = self.conn().await?;
                redis::cmd("ZRANGE")
                    .arg(keys::DEAD_LETTERS_BY_TIME)
                    .arg(if from == i64::MIN { "-inf".to_string() } else { from.to_string() })
                    .arg("+inf")
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(offset)
                    .arg(LIST_CHUNK)
                    .arg("WITHSCORES")
                    .query_async(&mut conn)
                    .await?
            };
            let full = entries.len() == LIST_CHUNK;
            // Entries at the cursor's score up to its run id were on an earlier page.
            let fresh: Vec<(String, i64)> = entries
                .iter()
                .filter(|(id, score)| skip_through.as_ref().is_none_or(|last| *score > from || id > last))
                .cloned()
                .collect();
            offset = if fresh.is_empty() { offset + entries.len() } else { 0 };
            scanned += entries.len().max(1);
            // Letters are read a batch at a time, as many as the page still lacks.
            let mut rest = fresh.as_slice();
            while !rest.is_empty() {
                let (batch, after_batch) = rest.split_at((limit - page.letters.len()).min(rest.len()));
                rest = after_batch;
                let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
                let mut unlettered = Vec::new();
                for ((run_id, score), letter) in batch.iter().zip(self.letters_of(&ids).await?) {
                    match letter {
                        Some(letter) if tenant.is_none_or(|t| t == letter.tenant) => page.letters.push(letter),
                        Some(_) => {}
                        None => unlettered.push((run_id.clone(), *score)),
                    }
                    (from, skip_through) = (*score, Some(run_id.clone()));
                    if page.letters.len() >= limit {
                        break;
                    }
                }
                self.prune_dead_letter_entries(&unlettered).await?;
                if page.letters.len() >= limit {
                    page.next = skip_through.map(|id| format!("{from}/{id}"));
                    return Ok(page);
                }
            }
            if !full {
                return Ok(page);
            }
        }
        page.next = skip_through.map(|id| format!("{from}/{id}"));
        Ok(page)
    }

    /// The letters of `run_ids`, in order (`None` where a run has none): one batch for the
    /// per-run letters, one read of the legacy hash for the rest.
    async fn letters_of(&self, run_ids: &[String]) -> Result<Vec<Option<DeadLetter>>> {
        let cmds =
            run_ids.iter().map(|id| redis::cmd("HGET").arg(keys::dead_letter(id)).arg("letter").clone()).collect();
        let raw: Vec<Option<Vec<u8>>> = self.each(cmds).await?;
        let mut letters = Vec::with_capacity(raw.len());
        for (id, bytes) in run_ids.iter().zip(&raw) {
            letters.push(bytes.as_deref().map(|b| decode(&keys::dead_letter(id), b)).transpose()?);
        }
        let missing: Vec<usize> = (0..letters.len()).filter(|i| letters[*i].is_none()).collect();
        if missing.is_empty() {
            return Ok(letters);
        }
        let mut conn = self.conn().await?;
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(keys::LEGACY_DEAD_LETTERS);
        for i in &missing {
            hmget.arg(&run_ids[*i]);
        }
        let legacy: Vec<Option<Vec<u8>>> = hmget.query_async(&mut conn).await?;
        for (i, bytes) in missing.into_iter().zip(legacy) {
            letters[i] = bytes.map(|b| decode(keys::LEGACY_DEAD_LETTERS, &b)).transpose()?;
        }
        Ok(letters)
    }

    /// Drops listing entries without a letter whose run can no longer gain one under them: the
    /// run is gone or ended (a run still going may be about to commit its letter; a requeued and
    /// again dead-lettered run re-lists itself under a later time, which this does not remove).
    async fn prune_dead_letter_entries(&self, entries: &[(String, i64)]) -> Result<()> {
        let ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
        let statuses = self.run_statuses(&ids).await?;
        for ((run_id, score), status) in entries.iter().zip(statuses) {
            if status.is_none_or(baton_core::status::is_terminal) {
                let mut conn = self.conn().await?;
                let _: i64 = scripts()
                    .unindex
                    .key(keys::DEAD_LETTERS_BY_TIME)
                    .arg(run_id)
                    .arg(*score)
                    .invoke_async(&mut conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// Removes a run's dead letter (discard): the letter, its legacy copy and its listing.
    /// True if there was one.
    pub async fn dead_letter_remove(&self, run_id: &str) -> Result<bool> {
        let cmds = vec![
            redis::cmd("DEL").arg(keys::dead_letter(run_id)).clone(),
            redis::cmd("HDEL").arg(keys::LEGACY_DEAD_LETTERS).arg(run_id).clone(),
            redis::cmd("ZREM").arg(keys::DEAD_LETTERS_BY_TIME).arg(run_id).clone(),
        ];
        let removed: Vec<i64> = self.each(cmds).await?;
        Ok(removed[0] + removed[1] > 0)
    }

    /// Unlists a requeued run's letter (its update already removed the letter) if the listing
    /// is still the one at `dead_at_ms`, and drops any legacy copy.
    pub async fn dead_letter_unlist(&self, run_id: &str, dead_at_ms: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: i64 = scripts()
            .unindex
            .key(keys::DEAD_LETTERS_BY_TIME)
            .arg(run_id)
            .arg(dead_at_ms)
            .invoke_async(&mut conn)
            .await?;
        let _: i64 = conn.hdel(keys::LEGACY_DEAD_LETTERS, run_id).await?;
        Ok(())
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<DeadLetter> {
    DeadLetter::decode(bytes).map_err(|e| Error::Corrupt { key: key.into(), reason: e.to_string() })
}
