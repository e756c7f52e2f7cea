//! API keys (`baton:apikeys`): each bound to one tenant and one role, stored as protobuf
//! `ApiKey` by key id, and found by the SHA-256 of its secret (`baton:apikeys:by-hash`). The
//! secret itself is never stored. A revoked key keeps its record (marked revoked) so listings
//! and the audit log can still name it; its hash entry stays too and leads to that record.
//! Every change is appended to the audit log in the same transaction.

use baton_proto::v1::ApiKey;
use prost::Message as _;
use redis::AsyncCommands as _;

use crate::{keys, AuditEntry, Error, Result, Store};

fn decode(id: &str, bytes: &[u8]) -> Result<ApiKey> {
    ApiKey::decode(bytes)
        .map_err(|e| Error::Corrupt { key: format!("{}[{id}]", keys::API_KEYS), reason: e.to_string() })
}

impl Store {
    /// Stores a new key found by `secret_sha256` (lowercase hex), and audits it. False (and
    /// nothing written) when a key with that secret hash exists already.
    pub async fn api_key_create(&self, key: &ApiKey, secret_sha256: &str, audit: &AuditEntry) -> Result<bool> {
        let mut conn = self.conn().await?;
        let claimed: bool = conn.hset_nx(keys::API_KEYS_BY_HASH, secret_sha256, &key.key_id).await?;
        if !claimed {
            return Ok(false);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.hset(keys::API_KEYS, &key.key_id, key.encode_to_vec()).ignore();
        pipe.add_command(audit.append_command()).ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(true)
    }

    /// The key whose secret has SHA-256 `secret_sha256` (lowercase hex), revoked or not.
    pub async fn api_key_by_secret_hash(&self, secret_sha256: &str) -> Result<Option<ApiKey>> {
        let mut conn = self.conn().await?;
        let id: Option<String> = conn.hget(keys::API_KEYS_BY_HASH, secret_sha256).await?;
        let Some(id) = id else { return Ok(None) };
        let bytes: Option<Vec<u8>> = conn.hget(keys::API_KEYS, &id).await?;
        bytes.map(|b| decode(&id, &b)).transpose()
    }

    /// The key `key_id`, revoked or not.
    pub async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>> {
        let mut conn = self.conn().await?;
        let bytes: Option<Vec<u8>> = conn.hget(keys::API_KEYS, key_id).await?;
        bytes.map(|b| decode(key_id, &b)).transpose()
    }

    /// Every key, newest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut conn = self.conn().await?;
        let all: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL").arg(keys::API_KEYS).query_async(&mut conn).await?;
        let mut out = all.iter().map(|(id, b)| decode(id, b)).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| b.key_id.cmp(&a.key_id)));
        Ok(out)
    }

    /// Replaces the record of an existing key (a revocation), and audits it.
    pub async fn api_key_update(&self, key: &ApiKey, audit: &AuditEntry) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.hset(keys::API_KEYS, &key.key_id, key.encode_to_vec()).ignore();
        pipe.add_command(audit.append_command()).ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }
}
