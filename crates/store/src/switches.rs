//! Operator switches (`baton:switches`): a tool disabled or made to need approval, a lane
//! paused, a tenant's cap on active runs. Each change is written with who, when and why, and
//! appended to the audit log in the same transaction; services re-read the hash every
//! `switches.refresh_ms`.

use crate::{keys, AuditEntry, Result, Store};

/// One switch in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchSetting {
    /// `tool.disabled`, `tool.requires_approval`, `lane.paused` or `tenant.max_active_runs`.
    pub switch: String,
    /// The tool, lane or tenant.
    pub target: String,
    /// `true` or a number.
    pub value: String,
    /// Who set it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When (ms since epoch).
    pub at_ms: i64,
}

impl SwitchSetting {
    fn field(&self) -> String {
        format!("{}:{}", self.switch, self.target)
    }

    fn encode(&self) -> String {
        format!("{}|{}|{}|{}", self.value, self.actor.replace('|', "/"), self.at_ms, self.reason)
    }

    fn decode(field: &str, text: &str) -> Option<Self> {
        let (switch, target) = field.split_once(':')?;
        let mut parts = text.splitn(4, '|');
        Some(Self {
            switch: switch.into(),
            target: target.into(),
            value: parts.next()?.into(),
            actor: parts.next()?.into(),
            at_ms: parts.next()?.parse().ok()?,
            reason: parts.next()?.into(),
        })
    }

    /// The audit action of a change of this switch: `switch:<switch>:<target>`.
    pub fn audit_action(&self) -> String {
        format!("switch:{}", self.field())
    }
}

impl Store {
    /// Sets a switch (`in_force`) or puts it back to its default (removes it), and audits the
    /// change, in one transaction.
    pub async fn set_switch(&self, change: &SwitchSetting, in_force: bool) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        if in_force {
            pipe.hset(keys::SWITCHES, change.field(), change.encode()).ignore();
        } else {
            pipe.hdel(keys::SWITCHES, change.field()).ignore();
        }
        let audit = AuditEntry {
            at_ms: change.at_ms,
            actor: change.actor.clone(),
            action: change.audit_action(),
            outcome: change.value.clone(),
            detail: change.reason.clone(),
        };
        pipe.add_command(audit.append_command()).ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Every switch in force.
    pub async fn switches(&self) -> Result<Vec<SwitchSetting>> {
        let mut conn = self.conn().await?;
        let all: Vec<(String, String)> = redis::cmd("HGETALL").arg(keys::SWITCHES).query_async(&mut conn).await?;
        Ok(all.iter().filter_map(|(f, v)| SwitchSetting::decode(f, v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip() {
        let s = SwitchSetting {
            switch: "tool.disabled".into(),
            target: "refund".into(),
            value: "true".into(),
            actor: "ops|alice".into(),
            reason: "bank outage | see INC-7".into(),
            at_ms: 42,
        };
        let back = SwitchSetting::decode(&s.field(), &s.encode()).unwrap();
        assert_eq!(back.reason, "bank outage | see INC-7");
        assert_eq!(back.actor, "ops/alice");
        assert_eq!((back.switch.as_str(), back.target.as_str(), back.at_ms), ("tool.disabled", "refund", 42));
        assert_eq!(s.audit_action(), "switch:tool.disabled:refund");
    }
}
