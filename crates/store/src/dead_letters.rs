//! The dead-letter index the AdminService reads: the same records as `baton.tasks.dlq`,
//! kept by run id until an operator requeues or discards them.

use baton_proto::v1::DeadLetter;
use prost::Message as _;
use redis::AsyncCommands as _;

use crate::{keys, Error, Result, Store};

impl Store {
    /// Records (or replaces) the dead letter of a run.
    pub async fn dead_letter_put(&self, letter: &DeadLetter) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.hset(keys::DEAD_LETTERS, &letter.run_id, letter.encode_to_vec())
            .ignore()
            .zadd(keys::DEAD_LETTERS_BY_TIME, &letter.run_id, letter.dead_at_ms)
            .ignore();
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// The dead letter of a run, if any.
    pub async fn dead_letter_get(&self, run_id: &str) -> Result<Option<DeadLetter>> {
        let mut conn = self.conn().await?;
        let bytes: Option<Vec<u8>> = conn.hget(keys::DEAD_LETTERS, run_id).await?;
        bytes.map(|b| decode(&b)).transpose()
    }

    /// Up to `limit` dead letters, oldest first, optionally of one tenant.
    pub async fn dead_letters(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        let mut conn = self.conn().await?;
        let ids: Vec<String> = conn.zrange(keys::DEAD_LETTERS_BY_TIME, 0, -1).await?;
        let mut out = Vec::new();
        for chunk in ids.chunks(256) {
            let rows: Vec<Option<Vec<u8>>> =
                redis::cmd("HMGET").arg(keys::DEAD_LETTERS).arg(chunk).query_async(&mut conn).await?;
            for bytes in rows.into_iter().flatten() {
                let letter = decode(&bytes)?;
                if tenant.is_none_or(|t| t == letter.tenant) {
                    out.push(letter);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Removes a run's dead letter. True if there was one.
    pub async fn dead_letter_remove(&self, run_id: &str) -> Result<bool> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.hdel(keys::DEAD_LETTERS, run_id).zrem(keys::DEAD_LETTERS_BY_TIME, run_id).ignore();
        let (removed,): (i64,) = pipe.query_async(&mut conn).await?;
        Ok(removed == 1)
    }
}

fn decode(bytes: &[u8]) -> Result<DeadLetter> {
    DeadLetter::decode(bytes).map_err(|e| Error::Corrupt { key: keys::DEAD_LETTERS.into(), reason: e.to_string() })
}
