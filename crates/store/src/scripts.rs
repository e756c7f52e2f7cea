//! The one Redis script loader: each Lua script is compiled in once and run by SHA
//! (redis-rs falls back to EVAL after a server restart flushed the script cache).

use std::sync::OnceLock;

use redis::Script;

/// All scripts of the store, loaded once per process.
pub struct Scripts {
    /// Take the lease of a run's next step (`lua/claim.lua`).
    pub claim: Script,
    /// Fenced checkpoint write (`lua/commit.lua`).
    pub commit: Script,
    /// First checkpoint of a run (`lua/create.lua`).
    pub create: Script,
    /// Lease heartbeat (`lua/renew.lua`).
    pub renew: Script,
    /// Conditional index removal (`lua/unindex.lua`).
    pub unindex: Script,
    /// Atomic read for a compare-and-set (`lua/read.lua`).
    pub read: Script,
    /// Compare-and-set of an unleased run (`lua/update.lua`).
    pub update: Script,
    /// Ask the executing worker to stop the run (`lua/request_stop.lua`).
    pub request_stop: Script,
    /// Hand a lease back (`lua/release.lua`).
    pub release: Script,
    /// Move a run's publication marker forward (`lua/published.lua`).
    pub published: Script,
    /// Break a dead worker's lease (`lua/break_lease.lua`).
    pub break_lease: Script,
    /// May a tool call go out (`lua/breaker_allow.lua`).
    pub breaker_allow: Script,
    /// Record a tool call's success or failure (`lua/breaker_record.lua`).
    pub breaker_record: Script,
    /// Take a token from a tenant's submit bucket (`lua/rate_take.lua`).
    pub rate_take: Script,
    /// Mark a dead letter delivered to its topic (`lua/letter_sent.lua`).
    pub letter_sent: Script,
    /// A worker's liveness beat, by the server's clock (`lua/beat.lua`).
    pub beat: Script,
    /// Workers whose beat is too old, by the server's clock (`lua/dead_workers.lua`).
    pub dead_workers: Script,
    /// Is one worker still dead (`lua/worker_dead.lua`).
    pub worker_dead: Script,
    /// A worker's partitions and every partition's owner expiry (`lua/owners_publish.lua`).
    pub owners_publish: Script,
    /// Partitions owned by live workers (`lua/owners_live.lua`).
    pub owners_live: Script,
    /// A control-plane member's beat (`lua/member_beat.lua`).
    pub member_beat: Script,
    /// Take or renew an index shard's lease (`lua/shard_take.lua`).
    pub shard_take: Script,
}

/// The process-wide scripts.
pub fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| {
        let terminal = baton_core::status::terminal_names()
            .iter()
            .map(|n| format!("[\"{n}\"]=true"))
            .collect::<Vec<_>>()
            .join(", ");
        let prelude = format!("local TERMINAL = {{{terminal}}}\n");
        let checkpoint = include_str!("lua/checkpoint.lua");
        let clock = include_str!("lua/clock.lua");
        Scripts {
            claim: Script::new(&format!("{prelude}{}", include_str!("lua/claim.lua"))),
            commit: Script::new(&format!("{prelude}{checkpoint}{}", include_str!("lua/commit.lua"))),
            create: Script::new(include_str!("lua/create.lua")),
            renew: Script::new(include_str!("lua/renew.lua")),
            unindex: Script::new(include_str!("lua/unindex.lua")),
            read: Script::new(include_str!("lua/read.lua")),
            update: Script::new(&format!("{prelude}{checkpoint}{}", include_str!("lua/update.lua"))),
            request_stop: Script::new(&format!("{prelude}{}", include_str!("lua/request_stop.lua"))),
            release: Script::new(include_str!("lua/release.lua")),
            published: Script::new(include_str!("lua/published.lua")),
            break_lease: Script::new(include_str!("lua/break_lease.lua")),
            breaker_allow: Script::new(include_str!("lua/breaker_allow.lua")),
            breaker_record: Script::new(include_str!("lua/breaker_record.lua")),
            rate_take: Script::new(include_str!("lua/rate_take.lua")),
            letter_sent: Script::new(include_str!("lua/letter_sent.lua")),
            beat: Script::new(&format!("{clock}{}", include_str!("lua/beat.lua"))),
            dead_workers: Script::new(&format!("{clock}{}", include_str!("lua/dead_workers.lua"))),
            worker_dead: Script::new(&format!("{clock}{}", include_str!("lua/worker_dead.lua"))),
            owners_publish: Script::new(&format!("{clock}{}", include_str!("lua/owners_publish.lua"))),
            owners_live: Script::new(&format!("{clock}{}", include_str!("lua/owners_live.lua"))),
            member_beat: Script::new(&format!("{clock}{}", include_str!("lua/member_beat.lua"))),
            shard_take: Script::new(include_str!("lua/shard_take.lua")),
        }
    })
}
