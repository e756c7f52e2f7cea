//! This process's share of a role's shards: several members of a role run at once, each taking
//! `count / members` shards (one more for the first `count % members` members in id order, so
//! the shares add up to `count`) under leases ([`baton_store::Store::shard_take`]); a member
//! that dies loses its shards when their leases expire and the others take them at their next
//! refresh, and a member that stops cleanly gives them back at once. Reapers and schedulers
//! share the index shards this way (the holder of shard 0 also does the role's fleet-wide jobs,
//! [`ShardShare::leads`]); workers share the partitions of their lane's task topic.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use baton_store::keys::SHARDS;
use baton_store::Store;

/// How long an index shard's lease lasts without renewal: a dead member's shards move within this.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often an index shard share is refreshed (leases renewed, shards taken or given back).
const REFRESH: Duration = Duration::from_secs(1);

/// The shards one member of a role holds.
pub struct ShardShare {
    store: Store,
    role: String,
    member: String,
    count: u16,
    lease: Duration,
    refresh_every: Duration,
    /// Id prefix of earlier instances this member replaces: their shards and registry entry are
    /// taken over until the first refresh that held shards.
    earlier: Option<String>,
    owned: BTreeSet<u16>,
    refreshed: Option<Instant>,
    renewed: Option<Instant>,
}

impl ShardShare {
    /// A share of the index shards (`SHARDS`) for a control-plane role; the first
    /// [`ShardShare::refresh`] takes it.
    pub fn new(store: Store, role: &str, member: &str) -> Self {
        Self::of(store, role, member, SHARDS, LEASE, REFRESH, None)
    }

    /// A share of `count` shards (0 until [`ShardShare::set_count`] says), under leases of `lease`
    /// refreshed every `refresh_every`, taking over from ids beginning with `earlier`.
    pub fn of(
        store: Store,
        role: &str,
        member: &str,
        count: u16,
        lease: Duration,
        refresh_every: Duration,
        earlier: Option<String>,
    ) -> Self {
        Self {
            store,
            role: role.to_string(),
            member: member.to_string(),
            count,
            lease,
            refresh_every,
            earlier,
            owned: BTreeSet::new(),
            refreshed: None,
            renewed: None,
        }
    }

    /// How many shards there are to share (a topic's partition count, once read).
    pub fn set_count(&mut self, count: u16) {
        self.count = count;
    }

    /// The shards this member holds now, renewed at most every `refresh_every`: leases kept,
    /// lost ones dropped, free ones taken up to this member's share, and any above it given back.
    /// While Redis cannot be reached the shards held are kept (see [`ShardShare::lapsed`]).
    pub async fn refresh(&mut self) -> Vec<u16> {
        if self.refreshed.is_some_and(|at| at.elapsed() < self.refresh_every) {
            return self.owned.iter().copied().collect();
        }
        self.refreshed = Some(Instant::now());
        match self.try_refresh().await {
            Ok(()) => self.renewed = Some(Instant::now()),
            // Keep what was held: a lease not renewed expires on its own.
            Err(e) => tracing::warn!(role = %self.role, error = %e, "cannot refresh shard leases"),
        }
        self.owned.iter().copied().collect()
    }

    /// True once no refresh has succeeded for a lease's length: the leases of the shards held
    /// have expired, and others may hold them now.
    pub fn lapsed(&self) -> bool {
        self.renewed.is_none_or(|at| at.elapsed() >= self.lease)
    }

    /// True if this member does the role's fleet-wide jobs (it holds shard 0).
    pub fn leads(&self) -> bool {
        self.owned.contains(&0)
    }

    async fn try_refresh(&mut self) -> baton_store::Result<()> {
        let (ttl, earlier) = (self.lease.as_millis() as u64, self.earlier.as_deref());
        let members = self.store.member_beat(&self.role, &self.member, ttl, earlier).await?;
        let count = usize::from(self.count);
        let share = share_of(count, &members, &self.member);
        let before = std::mem::take(&mut self.owned);
        let mut kept = BTreeSet::new();
        for shard in before.iter().copied() {
            if usize::from(shard) < count && self.store.shard_take(&self.role, shard, &self.member, ttl, None).await? {
                kept.insert(shard);
            } else if usize::from(shard) >= count {
                self.store.shard_release(&self.role, shard, &self.member).await?;
            }
        }
        // Give back what is above this member's share (a member joined), keeping shard 0 last.
        while kept.len() > share {
            let Some(extra) = kept.iter().rev().copied().next() else { break };
            self.store.shard_release(&self.role, extra, &self.member).await?;
            kept.remove(&extra);
        }
        // Take free shards up to the share, starting at a place of this member's own.
        let start = if count == 0 { 0 } else { usize::from(baton_store::keys::shard_of(&self.member)) % count };
        for offset in 0..count {
            if kept.len() >= share {
                break;
            }
            let shard = ((start + offset) % count) as u16;
            if !kept.contains(&shard) && self.store.shard_take(&self.role, shard, &self.member, ttl, earlier).await? {
                kept.insert(shard);
            }
        }
        if kept != before {
            tracing::info!(role = %self.role, shards = ?kept, members = members.len(), "shards this member holds");
        }
        if !kept.is_empty() {
            self.earlier = None;
        }
        self.owned = kept;
        Ok(())
    }

    /// Gives every lease back at once and leaves the role's registry (a clean stop): the others
    /// take the shards at their next refresh instead of after the leases expire.
    pub async fn release_all(&mut self) {
        for shard in std::mem::take(&mut self.owned) {
            if let Err(e) = self.store.shard_release(&self.role, shard, &self.member).await {
                tracing::debug!(role = %self.role, shard, error = %e, "cannot give a shard back (it expires)");
            }
        }
        if let Err(e) = self.store.member_forget(&self.role, &self.member).await {
            tracing::debug!(role = %self.role, error = %e, "cannot leave the role's registry (the entry expires)");
        }
    }
}

/// How many of `count` shards `member` should hold among `members` (ids in order): an equal
/// share, one more for the first `count % members` of them, so that the shares add up to `count`
/// and every shard has a taker.
fn share_of(count: usize, members: &[String], member: &str) -> usize {
    let n = members.len().max(1);
    let rank = members.iter().position(|m| m == member).unwrap_or(n - 1);
    count / n + usize::from(rank < count % n)
}

#[cfg(test)]
mod tests {
    use super::share_of;

    #[test]
    fn shares_add_up_to_the_count_and_differ_by_one_at_most() {
        for n in 1..=7 {
            let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
            for count in [0, 1, 4, 8, 16, 32] {
                let shares: Vec<usize> = members.iter().map(|m| share_of(count, &members, m)).collect();
                assert_eq!(shares.iter().sum::<usize>(), count, "{n} members, {count} shards: {shares:?}");
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "{shares:?}");
            }
        }
        assert_eq!(share_of(16, &[], "m0"), 16, "alone before the first beat answered");
    }
}
