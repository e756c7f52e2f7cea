//! The fleet's audit log (`baton:audit`, a capped Redis stream): operator actions and
//! configuration changes — switches, API keys, approval decisions, tool manifest reloads and
//! rejected manifests — with who, when and why.
//! Also the reload signal of the tool manifest (`baton:tools:reload`).

use redis::AsyncCommands as _;

use crate::{keys, Result, Store};

/// Most entries the audit stream keeps (older ones are trimmed).
pub const AUDIT_MAX_LEN: usize = 10_000;

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (ms since epoch).
    pub at_ms: i64,
    /// Who: a service instance or an operator.
    pub actor: String,
    /// What, e.g. `tools.reload`.
    pub action: String,
    /// How it went, e.g. `loaded`, `rejected`.
    pub outcome: String,
    /// Why, in words.
    pub detail: String,
}

impl AuditEntry {
    /// The XADD that appends this entry to the (capped) audit stream, for a call or a pipeline.
    pub(crate) fn append_command(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys::AUDIT).arg("MAXLEN").arg("~").arg(AUDIT_MAX_LEN).arg("*");
        cmd.arg("at").arg(self.at_ms).arg("actor").arg(&self.actor).arg("action").arg(&self.action);
        cmd.arg("outcome").arg(&self.outcome).arg("detail").arg(&self.detail);
        cmd
    }
}

impl Store {
    /// Appends an entry to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: String = entry.append_command().query_async(&mut conn).await?;
        Ok(())
    }

    /// The latest `limit` audit entries, newest first.
    pub async fn audit_latest(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit_since(0, limit).await
    }

    /// The audit entries appended since `since_ms` (by the stream's entry ids: Redis's clock),
    /// newest first, at most `limit`.
    pub async fn audit_since(&self, since_ms: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut conn = self.conn().await?;
        let oldest = format!("{}-0", since_ms.max(0));
        let reply: redis::streams::StreamRangeReply = conn.xrevrange_count(keys::AUDIT, "+", oldest, limit).await?;
        Ok(reply
            .ids
            .iter()
            .map(|e| {
                let field = |k: &str| e.get::<String>(k).unwrap_or_default();
                AuditEntry {
                    at_ms: field("at").parse().unwrap_or(0),
                    actor: field("actor"),
                    action: field("action"),
                    outcome: field("outcome"),
                    detail: field("detail"),
                }
            })
            .collect())
    }

    /// The tool manifest's reload generation: services re-read their manifest when it moves.
    pub async fn tools_reload_generation(&self) -> Result<i64> {
        let mut conn = self.conn().await?;
        let generation: Option<i64> = conn.get(keys::TOOLS_RELOAD).await?;
        Ok(generation.unwrap_or(0))
    }

    /// Asks every service to re-read its tool manifest now.
    pub async fn tools_reload_signal(&self) -> Result<i64> {
        let mut conn = self.conn().await?;
        Ok(conn.incr(keys::TOOLS_RELOAD, 1).await?)
    }
}
