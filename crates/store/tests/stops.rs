//! Stops, compare-and-set and dead letters against a real redis-server: a stale snapshot never
//! overwrites a newer checkpoint, a pending stop refuses every write that would let the run go
//! on, a dead letter is written with the run's end, and index entries are only ever removed as
//! they were read.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_core::admission::{admit, Policy};
use baton_core::catalog::Catalog;
use baton_core::machine::{apply_outcome, requeue, wake, Outcome, StepContext, Transition};
use baton_core::plan::{script_proposal, script_spec, Action};
use baton_core::stop::StopRequest;
use baton_proto::v1::{DeadLetter, EventKind, RunState, RunStatus};
use baton_store::{Claim, CommitOutcome, Index, Lease, Store, UpdateOutcome};
use baton_testkit::{Redis, TempDir};

async fn store_with_run(redis: &Redis, run_id: &str, steps: &[(&str, &str)]) -> Store {
    let config = baton_config::Redis { url: redis.url(), pool_size: 4, ..Default::default() };
    let store = Store::new(&config).unwrap();
    let mut state = admit(run_id, "t", "", script_spec(steps), &Policy::default(), &Catalog::builtins(), 1).unwrap();
    let mut events = Vec::new();
    baton_core::events::push(&mut state, &mut events, EventKind::RunQueued, 1, |_| {});
    assert!(store.create_run(&state, &events[0]).await.unwrap());
    store
}

async fn claim(store: &Store, run_id: &str, step: u32, ttl_ms: u64) -> (Lease, RunState) {
    match store.claim(run_id, step, 0, "w", ttl_ms, 50).await.unwrap() {
        Claim::Granted(g) => (g.lease, g.state),
        Claim::Refused(r) => panic!("claim refused: {r}"),
    }
}

fn ctx(fence: u64) -> StepContext {
    StepContext { worker: "w".into(), fence, started_at_ms: 2, now_ms: 3, retry_tiers_ms: Vec::new() }
}

/// The transition of running the script's current step with `outcome`.
fn step(state: RunState, fence: u64, outcome: Outcome) -> Transition {
    let Action::Call(call) = script_proposal(&state).action else { panic!("finished") };
    apply_outcome(state, &call, outcome, &ctx(fence), 0.0)
}

fn cancel() -> StopRequest {
    StopRequest { status: RunStatus::Cancelled, code: "cancelled".into(), by: "tenant:t".into(), message: "m".into() }
}

#[tokio::test]
async fn a_stop_read_before_a_lapsed_owner_commits_cannot_overwrite_that_commit() {
    let dir = TempDir::new("stale-stop");
    let redis = Redis::start(&dir, false).await;
    let store = store_with_run(&redis, "run-s", &[("echo", "{}")]).await;
    // The owner's lease lapses (a stall); nobody claims meanwhile.
    let (lease, state) = claim(&store, "run-s", 0, 100).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    // A cancel reads the run: same fence, no lease.
    let read = store.read_for_update("run-s").await.unwrap().unwrap();
    assert!(!read.leased);
    // The owner resumes and commits the run's end (the fence still holds).
    let done = step(state, lease.fence, Outcome::Completed { output_json: "{}".into() });
    assert_eq!(done.state.status(), RunStatus::Succeeded);
    assert_eq!(store.commit(&lease, &done.state, &done.events, 60_000, None).await.unwrap(), CommitOutcome::Committed);
    let events_after_commit = store.events_after("run-s", None, 100).await.unwrap();
    // The stop computed from the old snapshot is refused: the sequence it read moved.
    let stopped = cancel().apply(read.state.clone(), 9);
    assert_eq!(store.update(&read, &stopped.state, &stopped.events, 0).await.unwrap(), UpdateOutcome::Conflict);
    let now = store.load_run("run-s").await.unwrap().unwrap();
    assert_eq!(now.status(), RunStatus::Succeeded);
    let events = store.events_after("run-s", None, 100).await.unwrap();
    assert_eq!(events.len(), events_after_commit.len(), "no event appended");
    let seqs: Vec<u64> = events.iter().map(|e| e.event.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "sequence numbers strictly increase: {seqs:?}");
}

#[tokio::test]
async fn a_pending_stop_refuses_every_write_that_lets_the_run_go_on() {
    let dir = TempDir::new("pending-stop");
    let redis = Redis::start(&dir, false).await;
    let store =
        store_with_run(&redis, "run-c", &[("sleep", r#"{"ms":1}"#), ("wait", r#"{"ms":4000}"#), ("ledger", "{}")])
            .await;
    let (lease, state) = claim(&store, "run-c", 0, 5_000).await;
    // A stop only goes to a run somebody executes.
    assert_eq!(store.request_stop("run-c", &cancel()).await.unwrap(), "ok");
    // Commit-and-continue of the step that was running: refused, the stop named.
    let slept = step(state, lease.fence, Outcome::Completed { output_json: "{}".into() });
    assert_eq!(slept.state.status(), RunStatus::Running);
    match store.checkpoint(&lease, &slept.state, &slept.events, 5_000).await.unwrap() {
        CommitOutcome::Stopped(stop) => assert_eq!(stop, cancel()),
        other => panic!("continued past a stop: {other:?}"),
    }
    // Ending the slice into a wait: refused too.
    let parked = step(slept.state.clone(), lease.fence, Outcome::Waiting { wake_at_ms: i64::MAX / 2 });
    assert_eq!(parked.state.status(), RunStatus::Waiting);
    let both = Transition {
        events: slept.events.iter().chain(parked.events.iter()).cloned().collect(),
        state: parked.state.clone(),
        next: parked.next.clone(),
    };
    assert!(matches!(
        store.commit(&lease, &both.state, &both.events, 0, None).await.unwrap(),
        CommitOutcome::Stopped(_)
    ));
    // The stop after the step that ran commits; the run is cancelled and the request is gone.
    let end = cancel().apply_after(slept, 4);
    assert_eq!(store.commit(&lease, &end.state, &end.events, 60_000, None).await.unwrap(), CommitOutcome::Committed);
    let read = store.read_for_update("run-c").await.unwrap().unwrap();
    assert_eq!(read.state.status(), RunStatus::Cancelled);
    assert_eq!(read.state.next_step, 1, "the step that ran is recorded");
    assert!(read.stop.is_none());
    assert_eq!(store.request_stop("run-c", &cancel()).await.unwrap(), "terminal");
}

#[tokio::test]
async fn a_stop_left_by_a_dead_owner_ends_the_run_on_any_resume() {
    let dir = TempDir::new("orphan-stop");
    let redis = Redis::start(&dir, false).await;
    let store = store_with_run(&redis, "run-o", &[("echo", "{}"), ("echo", "{}")]).await;
    let (lease, _) = claim(&store, "run-o", 0, 150).await;
    assert_eq!(store.request_stop("run-o", &cancel()).await.unwrap(), "ok");
    // The owner dies; its lease lapses. The stop is still pending, and nobody holds the run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.request_stop("run-o", &cancel()).await.unwrap(), "unleased");
    let read = store.read_for_update("run-o").await.unwrap().unwrap();
    assert_eq!(read.stop, Some(cancel()));
    // A write that lets the run go on (here a wake) is refused…
    let woken = wake(read.state.clone(), 5);
    assert_eq!(store.update(&read, &woken.state, &woken.events, 0).await.unwrap(), UpdateOutcome::Stopped);
    // …and the stop itself is not; the next claim finds the run ended.
    let end = cancel().apply(read.state.clone(), 5);
    assert_eq!(store.update(&read, &end.state, &end.events, 60_000).await.unwrap(), UpdateOutcome::Updated);
    assert!(store.read_for_update("run-o").await.unwrap().unwrap().stop.is_none());
    assert!(matches!(store.claim("run-o", 0, 0, "w2", 1_000, 50).await.unwrap(), Claim::Refused(r) if r == "terminal"));
    let _ = lease;
}

#[tokio::test]
async fn a_dead_letter_is_written_with_the_run_s_end_and_taken_by_its_requeue() {
    let dir = TempDir::new("letters");
    let redis = Redis::start(&dir, false).await;
    let store = store_with_run(&redis, "run-d", &[("flaky", r#"{"fail_rate":1.0}"#)]).await;
    let (lease, state) = claim(&store, "run-d", 0, 5_000).await;
    let mut state = state;
    state.retry = Some(baton_proto::v1::RetryPolicy { max_attempts: 1, ..Default::default() });
    let dead = step(state, lease.fence, Outcome::retryable("503"));
    assert_eq!(dead.state.status(), RunStatus::DeadLettered);
    let letter = DeadLetter {
        run_id: "run-d".into(),
        tenant: "t".into(),
        step: 0,
        tool: "flaky".into(),
        attempts: 1,
        error: "503".into(),
        dead_at_ms: 7,
        ..Default::default()
    };
    store.dead_letter_index("run-d", letter.dead_at_ms).await.unwrap();
    // Listed before its commit, but not shown until the letter exists; not pruned either.
    assert!(store.dead_letters(None, 10, None).await.unwrap().letters.is_empty());
    let mut conn = store.conn().await.unwrap();
    let listed: Option<i64> = redis::cmd("ZSCORE")
        .arg(baton_store::keys::DEAD_LETTERS_BY_TIME)
        .arg("run-d")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(listed, Some(7), "a run still going keeps its listing");
    assert_eq!(
        store.commit(&lease, &dead.state, &dead.events, 60_000, Some(&letter)).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(store.dead_letter_get("run-d").await.unwrap(), Some((letter.clone(), false)), "not yet sent");
    let page = store.dead_letters(Some("t"), 10, None).await.unwrap();
    assert_eq!((page.letters.len(), page.next), (1, None));
    assert!(store.dead_letters(Some("other"), 10, None).await.unwrap().letters.is_empty());
    store.dead_letter_sent("run-d").await.unwrap();
    assert_eq!(store.dead_letter_get("run-d").await.unwrap(), Some((letter.clone(), true)));
    // The letter expires with the run.
    let ttl: i64 = redis::cmd("PTTL").arg("baton:letter:{run-d}").query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "ttl {ttl}");
    // A requeue's update takes the letter in the same write.
    let read = store.read_for_update("run-d").await.unwrap().unwrap();
    let back = requeue(read.state.clone(), "admin", 8);
    assert_eq!(store.update(&read, &back.state, &back.events, 60_000).await.unwrap(), UpdateOutcome::Updated);
    assert_eq!(store.dead_letter_get("run-d").await.unwrap(), None);
    store.dead_letter_unlist("run-d", letter.dead_at_ms).await.unwrap();
    assert!(store.dead_letters(None, 10, None).await.unwrap().letters.is_empty());
}

#[tokio::test]
async fn index_entries_are_removed_only_as_they_were_read() {
    let dir = TempDir::new("unindex");
    let redis = Redis::start(&dir, false).await;
    let config = baton_config::Redis { url: redis.url(), pool_size: 4, ..Default::default() };
    let store = Store::new(&config).unwrap();
    store.index_set(Index::Inflight, "r", 100).await.unwrap();
    // A resume wrote a fresher entry after a reader saw 100: the reader's removal misses.
    store.index_set(Index::Inflight, "r", 250).await.unwrap();
    assert!(!store.index_clear(Index::Inflight, "r", 100).await.unwrap());
    assert_eq!(store.index_score(Index::Inflight, "r").await.unwrap(), Some(250));
    store.index_set(Index::Timers, "r", 40).await.unwrap();
    store.index_clear_all("r", &[(Index::Inflight, 250), (Index::Timers, 41)]).await.unwrap();
    assert_eq!(store.index_score(Index::Inflight, "r").await.unwrap(), None);
    assert_eq!(store.index_score(Index::Timers, "r").await.unwrap(), Some(40));
}

#[tokio::test]
async fn dead_letters_page_through_a_burst_in_one_millisecond() {
    let dir = TempDir::new("dlq-pages");
    let redis = Redis::start(&dir, false).await;
    let config = baton_config::Redis { url: redis.url(), pool_size: 4, ..Default::default() };
    let store = Store::new(&config).unwrap();
    let mut conn = store.conn().await.unwrap();
    // 300 runs dead-lettered in the same millisecond (more than one read of the index), then
    // 300 more one per millisecond; every third belongs to another tenant.
    let mut pipe = redis::pipe();
    for i in 0..600 {
        let run_id = format!("run-{i:03}");
        let dead_at_ms = if i < 300 { 100 } else { i as i64 };
        let tenant = if i % 3 == 0 { "other" } else { "t" };
        let letter = DeadLetter { run_id: run_id.clone(), tenant: tenant.into(), dead_at_ms, ..Default::default() };
        pipe.cmd("HSET")
            .arg(baton_store::keys::dead_letter(&run_id))
            .arg("letter")
            .arg(prost::Message::encode_to_vec(&letter))
            .arg("sent")
            .arg(1)
            .ignore();
        pipe.cmd("ZADD").arg(baton_store::keys::DEAD_LETTERS_BY_TIME).arg(dead_at_ms).arg(&run_id).ignore();
    }
    let () = pipe.query_async(&mut conn).await.unwrap();
    for (tenant, expected) in [(None, 600), (Some("t"), 400)] {
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        for _ in 0..100 {
            let page = store.dead_letters(tenant, 50, after.as_deref()).await.unwrap();
            seen.extend(page.letters.iter().map(|l| (l.dead_at_ms, l.run_id.clone())));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut in_order = seen.clone();
        in_order.sort();
        in_order.dedup();
        assert_eq!(seen.len(), expected, "{tenant:?}: every letter listed");
        assert_eq!(seen, in_order, "{tenant:?}: oldest first, none twice");
    }
}
