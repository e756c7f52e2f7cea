//! The claim/commit scripts against a real redis-server: fencing rejects a stale owner without
//! changing anything; claims refuse duplicates, stale and finished steps.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_core::admission::{admit, Policy};
use baton_core::catalog::Catalog;
use baton_core::machine::{apply_outcome, Outcome, StepContext};
use baton_core::plan::{model_spec, script_proposal, script_spec, Action};
use baton_proto::v1::{EventKind, RunEvent, RunSpec, RunState};
use baton_store::{Claim, CommitOutcome, Store};
use baton_testkit::{Redis, TempDir};

fn spec(n: usize) -> RunSpec {
    script_spec(&vec![("echo", "{}"); n])
}

async fn store_with_run(redis: &Redis, run_id: &str, steps: usize) -> (Store, RunState) {
    store_with(redis, run_id, spec(steps)).await
}

async fn store_with(redis: &Redis, run_id: &str, spec: RunSpec) -> (Store, RunState) {
    let config = baton_config::Redis { url: redis.url(), pool_size: 4, ..Default::default() };
    let store = Store::new(&config).unwrap();
    let policy = Policy { models: vec!["m".into()], ..Policy::default() };
    let state = admit(run_id, "t", "", spec, &policy, &Catalog::builtins(), 1).unwrap();
    let queued = RunEvent { run_id: run_id.into(), seq: 1, kind: EventKind::RunQueued as i32, ..Default::default() };
    assert!(store.create_run(&state, &queued).await.unwrap());
    assert!(!store.create_run(&state, &queued).await.unwrap(), "create is idempotent");
    (store, state)
}

fn completed(state: RunState, fence: u64, worker: &str) -> baton_core::machine::Transition {
    let Action::Call(call) = script_proposal(&state).action else { panic!("finished") };
    let ctx = StepContext { worker: worker.into(), fence, started_at_ms: 2, now_ms: 3, retry_tiers_ms: Vec::new() };
    apply_outcome(state, &call, Outcome::Completed { output_json: format!("\"{worker}\"") }, &ctx, 0.0)
}

fn granted(claim: Claim) -> (baton_store::Lease, RunState) {
    match claim {
        Claim::Granted(g) => (g.lease, g.state),
        Claim::Refused(r) => panic!("claim refused: {r}"),
    }
}

fn refused(claim: Claim) -> String {
    match claim {
        Claim::Granted(..) => panic!("claim granted"),
        Claim::Refused(r) => r,
    }
}

#[tokio::test]
async fn a_commit_with_an_old_fence_is_rejected_and_changes_nothing() {
    let dir = TempDir::new("fencing");
    let redis = Redis::start(&dir, false).await;
    let (store, _) = store_with_run(&redis, "run-f", 3).await;

    // Worker A claims step 0 with a short lease and stalls past it.
    let (lease_a, state_a) = granted(store.claim("run-f", 0, 0, "worker-a", 100, 50).await.unwrap());
    assert_eq!(refused(store.claim("run-f", 0, 0, "worker-b", 100, 50).await.unwrap()), "leased");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!store.renew(&lease_a, 1000).await.unwrap().0, "an expired lease cannot be renewed");

    // Worker B takes over with a newer fence.
    let (lease_b, state_b) = granted(store.claim("run-f", 0, 0, "worker-b", 5_000, 50).await.unwrap());
    assert!(lease_b.fence > lease_a.fence);
    let before = store.load_run("run-f").await.unwrap().unwrap();
    let events_before = store.events_after("run-f", None, 100).await.unwrap().len();

    // A's late commit is rejected and leaves checkpoint, history and B's lease untouched.
    let late = completed(state_a, lease_a.fence, "worker-a");
    assert_eq!(store.commit(&lease_a, &late.state, &late.events, 0, None).await.unwrap(), CommitOutcome::Fenced);
    assert_eq!(store.load_run("run-f").await.unwrap().unwrap(), before);
    assert_eq!(store.events_after("run-f", None, 100).await.unwrap().len(), events_before);
    assert!(store.renew(&lease_b, 5_000).await.unwrap().0, "B still holds its lease");

    // B commits; the step is recorded once, by B.
    let t = completed(state_b, lease_b.fence, "worker-b");
    assert_eq!(store.commit(&lease_b, &t.state, &t.events, 0, None).await.unwrap(), CommitOutcome::Committed);
    let after = store.run_view("run-f", 10).await.unwrap().unwrap();
    assert_eq!(after.state.next_step, 1);
    assert_eq!(after.steps_total, 1);
    assert_eq!(after.latest[0].worker, "worker-b");

    // Committing the same transition twice is refused: no duplicated events.
    assert_eq!(store.commit(&lease_b, &t.state, &t.events, 0, None).await.unwrap(), CommitOutcome::Fenced);
    assert_eq!(store.events_after("run-f", None, 100).await.unwrap().len(), events_before + 1);
    // Duplicate task for the finished step 0: stale. A task for step 2: not reached yet.
    assert_eq!(refused(store.claim("run-f", 0, 0, "worker-c", 100, 50).await.unwrap()), "stale");
    assert_eq!(refused(store.claim("run-f", 2, 0, "worker-c", 100, 50).await.unwrap()), "ahead");
    assert_eq!(refused(store.claim("nope", 0, 0, "worker-c", 100, 50).await.unwrap()), "missing");
}

#[tokio::test]
async fn a_finished_run_refuses_claims_and_expires_after_retention() {
    let dir = TempDir::new("fencing-done");
    let redis = Redis::start(&dir, false).await;
    let (store, _) = store_with_run(&redis, "run-d", 1).await;
    let (lease, state) = granted(store.claim("run-d", 0, 0, "w", 5_000, 50).await.unwrap());
    let t = completed(state, lease.fence, "w");
    assert_eq!(t.state.status(), baton_proto::v1::RunStatus::Succeeded);
    assert_eq!(store.commit(&lease, &t.state, &t.events, 300, None).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(refused(store.claim("run-d", 1, 0, "w", 100, 50).await.unwrap()), "terminal");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(store.load_run("run-d").await.unwrap().is_none(), "retention expired the finished run");
}

#[tokio::test]
async fn a_proposal_commit_keeps_the_lease_and_the_tool_result_follows_under_the_same_fence() {
    let dir = TempDir::new("fencing-proposal");
    let redis = Redis::start(&dir, false).await;
    let (store, _) = store_with(&redis, "run-p", model_spec("m", "goal", &["echo"])).await;
    let (lease, state) = granted(store.claim("run-p", 0, 0, "w", 5_000, 50).await.unwrap());
    let ctx =
        StepContext { worker: "w".into(), fence: lease.fence, started_at_ms: 2, now_ms: 3, retry_tiers_ms: Vec::new() };
    let call = baton_proto::v1::ToolCall { tool: "echo".into(), args_json: r#"{"x":1}"#.into() };
    let usage = baton_proto::v1::Usage { input_tokens: 5, model_calls: 1, ..Default::default() };
    let proposed = baton_core::proposal::accept(state, &call, usage, String::new(), &ctx);
    assert_eq!(
        store.checkpoint(&lease, &proposed.state, &proposed.events, 5_000).await.unwrap(),
        CommitOutcome::Committed
    );
    // The proposal is durable and the lease is still ours.
    let stored = store.load_run("run-p").await.unwrap().unwrap();
    assert_eq!(stored.pending.as_ref().unwrap().call.as_ref().unwrap(), &call);
    assert_eq!(refused(store.claim("run-p", 0, 0, "other", 100, 50).await.unwrap()), "leased");
    assert!(store.renew(&lease, 5_000).await.unwrap().0);
    // A replay of the same proposal commit is refused: its events are already appended.
    assert_eq!(
        store.checkpoint(&lease, &proposed.state, &proposed.events, 5_000).await.unwrap(),
        CommitOutcome::Fenced
    );
    // The tool's result commits under the same fence and drops the lease.
    let done = apply_outcome(proposed.state, &call, Outcome::Completed { output_json: "{}".into() }, &ctx, 0.0);
    assert_eq!(store.commit(&lease, &done.state, &done.events, 0, None).await.unwrap(), CommitOutcome::Committed);
    let stored = store.run_view("run-p", 10).await.unwrap().unwrap();
    assert!(stored.state.pending.is_none());
    assert_eq!(stored.steps_total, 1);
    let kinds: Vec<_> = store.events_after("run-p", None, 100).await.unwrap().iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, vec![EventKind::RunQueued, EventKind::StepProposed, EventKind::StepCompleted]);
    assert!(!store.renew(&lease, 5_000).await.unwrap().0, "the lease was dropped");
}

#[tokio::test]
async fn history_lives_outside_the_checkpoint_old_checkpoints_upgrade_and_newer_ones_are_left_alone() {
    use prost::Message as _;
    let dir = TempDir::new("layout");
    let redis = Redis::start(&dir, false).await;
    let (store, _) = store_with_run(&redis, "run-l", 3).await;
    for step in 0..2 {
        let (lease, state) = granted(store.claim("run-l", step, 0, "w", 5_000, 50).await.unwrap());
        let t = completed(state, lease.fence, "w");
        assert_eq!(store.commit(&lease, &t.state, &t.events, 0, None).await.unwrap(), CommitOutcome::Committed);
    }
    let view = store.run_view("run-l", 1).await.unwrap().unwrap();
    assert_eq!((view.steps_total, view.latest.len(), view.latest[0].step), (2, 1, 1));
    let (page, total) = store.steps_page("run-l", 1, 10).await.unwrap();
    assert_eq!((page.len(), total, page[0].step), (1, 2, 1));
    let mut conn = store.conn().await.unwrap();
    let head: Vec<u8> = redis::cmd("HGET").arg("baton:run:{run-l}").arg("state").query_async(&mut conn).await.unwrap();
    let head = RunState::decode(head.as_slice()).unwrap();
    assert!(head.spec.is_none() && head.steps.is_empty(), "the stored head has neither spec nor steps");
    assert_eq!(head.schema_version, baton_core::SCHEMA_VERSION);

    // A schema-1 checkpoint (spec and steps inline, no spec key, no step list) still loads and
    // runs; its next commit moves its steps to the list and writes its spec key.
    let (_, mut old) = store_with_run(&redis, "run-v1", 3).await;
    let (lease, state) = granted(store.claim("run-v1", 0, 0, "w", 5_000, 50).await.unwrap());
    let t = completed(state, lease.fence, "w");
    old.schema_version = 1;
    old.steps = t.state.steps.clone();
    old.next_step = 1;
    old.event_seq = t.state.event_seq;
    let _: () = redis::cmd("HSET")
        .arg("baton:run:{run-v1}")
        .arg("state")
        .arg(old.encode_to_vec())
        .arg("step")
        .arg(1)
        .arg("seq")
        .arg(old.event_seq)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () =
        redis::cmd("DEL").arg("baton:spec:{run-v1}").arg("baton:lease:{run-v1}").query_async(&mut conn).await.unwrap();
    let view = store.run_view("run-v1", 10).await.unwrap().unwrap();
    assert_eq!((view.steps_total, view.latest.len()), (1, 1), "inline steps are shown");
    assert!(view.state.spec.is_some(), "the inline spec is read");
    let (lease, state) = granted(store.claim("run-v1", 1, 0, "w", 5_000, 50).await.unwrap());
    let t = completed(state, lease.fence, "w");
    assert_eq!(store.commit(&lease, &t.state, &t.events, 0, None).await.unwrap(), CommitOutcome::Committed);
    let view = store.run_view("run-v1", 10).await.unwrap().unwrap();
    assert_eq!(view.latest.iter().map(|s| s.step).collect::<Vec<_>>(), vec![0, 1], "moved to the list, in order");
    assert!(view.state.steps.is_empty());
    let spec: Option<Vec<u8>> = redis::cmd("GET").arg("baton:spec:{run-v1}").query_async(&mut conn).await.unwrap();
    assert!(spec.is_some(), "the spec key was written");

    // A checkpoint from a newer Baton is neither executed nor overwritten: the claim hands its
    // lease back and names the reason, reads and writes refuse it, the stored head is untouched.
    let (_, mut newer) = store_with_run(&redis, "run-v9", 3).await;
    newer.schema_version = baton_core::SCHEMA_VERSION + 1;
    let _: () = redis::cmd("HSET")
        .arg("baton:run:{run-v9}")
        .arg("state")
        .arg(newer.encode_to_vec())
        .query_async(&mut conn)
        .await
        .unwrap();
    match store.claim("run-v9", 0, 0, "old-worker", 5_000, 50).await.unwrap() {
        Claim::Refused(reason) => assert!(reason.starts_with("newer_schema") && reason.contains("upgrade"), "{reason}"),
        Claim::Granted(_) => panic!("an old worker claimed a newer checkpoint"),
    }
    let lease: Option<String> = redis::cmd("GET").arg("baton:lease:{run-v9}").query_async(&mut conn).await.unwrap();
    assert_eq!(lease, None, "the lease was handed back");
    assert!(matches!(store.load_run("run-v9").await, Err(baton_store::Error::NewerSchema { .. })));
    assert!(matches!(store.read_for_update("run-v9").await, Err(baton_store::Error::NewerSchema { .. })));
    let head: Vec<u8> = redis::cmd("HGET").arg("baton:run:{run-v9}").arg("state").query_async(&mut conn).await.unwrap();
    assert_eq!(head, newer.encode_to_vec(), "nothing was overwritten");
}

#[tokio::test]
async fn a_claim_reads_only_the_latest_step_records_of_a_model_run() {
    let dir = TempDir::new("claim-window");
    let redis = Redis::start(&dir, false).await;
    let (store, _) = store_with(&redis, "run-w", model_spec("m", "goal", &["echo"])).await;
    let call = baton_proto::v1::ToolCall { tool: "echo".into(), args_json: "{}".into() };
    for step in 0..10 {
        let (lease, state) = granted(store.claim("run-w", step, 0, "w", 5_000, 4).await.unwrap());
        let ctx =
            StepContext { worker: "w".into(), fence: lease.fence, started_at_ms: 2, now_ms: 3, retry_tiers_ms: vec![] };
        let t = apply_outcome(state, &call, Outcome::Completed { output_json: format!("{step}") }, &ctx, 0.0);
        assert_eq!(store.commit(&lease, &t.state, &t.events, 0, None).await.unwrap(), CommitOutcome::Committed);
    }
    let Claim::Granted(g) = store.claim("run-w", 10, 0, "w", 5_000, 4).await.unwrap() else { panic!("refused") };
    assert_eq!(g.history.iter().map(|r| r.step).collect::<Vec<_>>(), vec![6, 7, 8, 9], "the latest 4, oldest first");
    assert_eq!(g.state.next_step, 10, "the head still counts every step");
    assert!(store.release(&g.lease).await.unwrap());
    let Claim::Granted(g) = store.claim("run-w", 10, 0, "w", 5_000, 0).await.unwrap() else { panic!("refused") };
    assert!(g.history.is_empty(), "a window of 0 reads no records");
    assert!(store.release(&g.lease).await.unwrap());
    let Claim::Granted(g) = store.claim("run-w", 10, 0, "w", 5_000, 1000).await.unwrap() else { panic!("refused") };
    assert_eq!(g.history.len(), 10, "a window longer than the run reads it all");
}
