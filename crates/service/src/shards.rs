//! This process's share of the index shards, for a control-plane role (reaper or scheduler):
//! several members of a role run at once, each sweeping about `SHARDS / members` shards under
//! leases ([`baton_store::Store::shard_take`]); a member that dies loses its shards when their
//! leases expire (`LEASE`) and the others take them at their next refresh. The holder of shard 0
//! also does the role's fleet-wide jobs ([`ShardShare::leads`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use baton_store::keys::SHARDS;
use baton_store::Store;

/// How long a shard lease lasts without renewal: a dead member's shards move within this.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often the share is refreshed (leases renewed, shards taken or given back).
const REFRESH: Duration = Duration::from_secs(1);

/// The shards one member of a role sweeps.
pub struct ShardShare {
    store: Store,
    role: &'static str,
    member: String,
    owned: BTreeSet<u16>,
    refreshed: Option<Instant>,
}

impl ShardShare {
    /// No shards yet; the first [`ShardShare::refresh`] takes a share.
    pub fn new(store: Store, role: &'static str, member: &str) -> Self {
        Self { store, role, member: member.to_string(), owned: BTreeSet::new(), refreshed: None }
    }

    /// The shards this member sweeps now, renewed at most once a second: leases kept, lost ones
    /// dropped, free ones taken up to an equal share, and any above it given back.
    pub async fn refresh(&mut self) -> Vec<u16> {
        if self.refreshed.is_some_and(|at| at.elapsed() < REFRESH) {
            return self.owned.iter().copied().collect();
        }
        self.refreshed = Some(Instant::now());
        if let Err(e) = self.try_refresh().await {
            // Keep sweeping what was held: a lease not renewed expires on its own.
            tracing::warn!(role = self.role, error = %e, "cannot refresh index shard leases");
        }
        self.owned.iter().copied().collect()
    }

    /// True if this member does the role's fleet-wide jobs (it holds shard 0).
    pub fn leads(&self) -> bool {
        self.owned.contains(&0)
    }

    async fn try_refresh(&mut self) -> baton_store::Result<()> {
        let ttl = LEASE.as_millis() as u64;
        let members = self.store.member_beat(self.role, &self.member, ttl).await?.max(1);
        let share = usize::from(SHARDS).div_ceil(members as usize);
        let before = std::mem::take(&mut self.owned);
        let mut kept = BTreeSet::new();
        for shard in before.iter().copied() {
            if self.store.shard_take(self.role, shard, &self.member, ttl).await? {
                kept.insert(shard);
            }
        }
        // Give back what is above an equal share (a member joined), keeping shard 0 last.
        while kept.len() > share {
            let Some(extra) = kept.iter().rev().copied().next() else { break };
            self.store.shard_release(self.role, extra, &self.member).await?;
            kept.remove(&extra);
        }
        // Take free shards up to the share, starting at a place of this member's own.
        let start = usize::from(baton_store::keys::shard_of(&self.member));
        for offset in 0..usize::from(SHARDS) {
            if kept.len() >= share {
                break;
            }
            let shard = ((start + offset) % usize::from(SHARDS)) as u16;
            if !kept.contains(&shard) && self.store.shard_take(self.role, shard, &self.member, ttl).await? {
                kept.insert(shard);
            }
        }
        if kept != before {
            tracing::info!(role = self.role, shards = ?kept, members, "index shards this member sweeps");
        }
        self.owned = kept;
        Ok(())
    }

    /// Gives every lease back at once (a clean stop): the others take the shards at their next
    /// refresh instead of after the leases expire.
    pub async fn release_all(&mut self) {
        for shard in std::mem::take(&mut self.owned) {
            if let Err(e) = self.store.shard_release(self.role, shard, &self.member).await {
                tracing::debug!(role = self.role, shard, error = %e, "cannot give a shard back (it expires)");
            }
        }
    }
}
