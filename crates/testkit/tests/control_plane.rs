//! No singleton in the control plane: three schedulers and three reapers run at once, share
//! the index shards under leases (every shard swept by exactly one of each), and act once —
//! every timer fires once, every step commits once, every ledger effect happens once. One of
//! each is SIGKILLed: within seconds its shards are another's, and the runs in them go on.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use baton_proto::v1::{EventKind, RetryPolicy, RunStatus};
use baton_store::keys::{shard_owner, SHARDS};
use baton_testkit::runs::{check_history, final_status, script, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};

const WITHIN: Duration = Duration::from_secs(90);

/// Who holds each shard's lease for `role` now.
async fn owners(conn: &mut redis::aio::MultiplexedConnection, role: &str) -> BTreeMap<u16, String> {
    let mut out = BTreeMap::new();
    for shard in 0..SHARDS {
        let owner: Option<String> = redis::cmd("GET").arg(shard_owner(shard, role)).query_async(conn).await.unwrap();
        if let Some(owner) = owner {
            out.insert(shard, owner);
        }
    }
    out
}

/// Waits until every shard of `role` is held, by members of `alive` only, none holding more
/// than `at_most`.
async fn wait_for_an_even_split(
    conn: &mut redis::aio::MultiplexedConnection,
    role: &str,
    alive: &[String],
    at_most: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = owners(conn, role).await;
        let mut per_member: BTreeMap<&String, usize> = BTreeMap::new();
        for owner in held.values() {
            *per_member.entry(owner).or_default() += 1;
        }
        let everything = held.len() == usize::from(SHARDS);
        let only_alive = held.values().all(|o| alive.contains(o));
        if everything && only_alive && per_member.values().all(|n| *n <= at_most) {
            return;
        }
        assert!(Instant::now() < deadline, "{role} shards not split among {alive:?}: {held:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The member id of a control-plane service (`<service>-<pid>-<random>`), from its role's
/// registry once it has beaten.
async fn member_id(conn: &mut redis::aio::MultiplexedConnection, stack: &Stack, index: usize, role: &str) -> String {
    let prefix = format!("{role}-{}-", stack.services[index].pid());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let members: Vec<String> =
            redis::cmd("ZRANGE").arg(baton_store::keys::members(role)).arg(0).arg(-1).query_async(conn).await.unwrap();
        if let Some(id) = members.into_iter().find(|m| m.starts_with(&prefix)) {
            return id;
        }
        assert!(Instant::now() < deadline, "{role} {prefix}… never beat");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_and_three_reapers_share_the_shards_and_act_once() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_SCHEDULER_RETRY_TIERS_MS".into(), "[200, 1000]".into()));
    let mut stack = Stack::infra("control-plane", opts).await;
    stack.start_gateway().await;
    stack.start("worker").await;
    stack.start("worker").await;
    let schedulers: Vec<usize> =
        vec![stack.start("scheduler").await, stack.start("scheduler").await, stack.start("scheduler").await];
    let reapers: Vec<usize> =
        vec![stack.start("reaper").await, stack.start("reaper").await, stack.start("reaper").await];
    let redis = redis::Client::open(stack.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let mut scheduler_ids = Vec::new();
    for i in &schedulers {
        scheduler_ids.push(member_id(&mut conn, &stack, *i, "scheduler").await);
    }
    let mut reaper_ids = Vec::new();
    for i in &reapers {
        reaper_ids.push(member_id(&mut conn, &stack, *i, "reaper").await);
    }
    wait_for_an_even_split(&mut conn, "scheduler", &scheduler_ids, 6).await;
    wait_for_an_even_split(&mut conn, "reaper", &reaper_ids, 6).await;

    // Runs that wait on timers, retry through the tiers and record effects, before and after
    // one scheduler and one reaper die.
    let spec = || {
        let mut spec = script(&[
            ("ledger", "{}"),
            ("wait", r#"{"ms":700}"#),
            ("flaky", r#"{"fail_attempts":1}"#),
            ("wait", r#"{"ms":400}"#),
            ("ledger", "{}"),
        ]);
        spec.retry = Some(RetryPolicy { max_attempts: 3, initial_backoff_ms: 100, max_backoff_ms: 1_000 });
        spec
    };
    let mut client = stack.client().await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(submit(&mut client, spec(), "").await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.services[schedulers[0]].kill().await;
    stack.services[reapers[0]].kill().await;
    let killed_at = Instant::now();
    for _ in 0..30 {
        ids.push(submit(&mut client, spec(), "").await);
    }
    // Within seconds the dead members' shards are the others'.
    wait_for_an_even_split(&mut conn, "scheduler", &scheduler_ids[1..], 8).await;
    wait_for_an_even_split(&mut conn, "reaper", &reaper_ids[1..], 8).await;
    println!("the dead members' shards were taken over within {:?}", killed_at.elapsed());

    let store = stack.store();
    for id in &ids {
        let events = watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!(final_status(&events), RunStatus::Succeeded, "{events:?}");
        assert_eq!(check_history(&events), Ok(5));
        let resumed = events.iter().filter(|e| e.kind() == EventKind::RunResumed).count();
        assert_eq!(resumed, 2, "each timer fired once: {events:?}");
        for step in [0, 4] {
            assert_eq!(store.ledger_calls(&format!("{id}:{step}")).await.unwrap().len(), 1, "{id}:{step}");
        }
    }
    let leaders: BTreeSet<String> = owners(&mut conn, "reaper").await.get(&0).cloned().into_iter().collect();
    assert_eq!(leaders.len(), 1, "one reaper leads (holds shard 0)");
}
