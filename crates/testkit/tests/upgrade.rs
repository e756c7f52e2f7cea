//! A rolling upgrade over real processes: runs whose checkpoints are in the previous build's
//! format (schema 1: spec and steps inside the checkpoint, no spec key, no step list) — some
//! queued and not started, one finished — are executed and read by this build, history intact.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_proto::v1::{GetRunRequest, ListStepsRequest, RunState, RunStatus, SetLaneSwitchRequest};
use baton_testkit::runs::{check_history, echoes, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};
use prost::Message as _;

const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_checkpointed_by_the_previous_build_complete_on_this_one() {
    let mut opts = StackOptions::default();
    opts.env.push(("BATON_SWITCHES_REFRESH_MS".into(), "100".into()));
    let stack = Stack::full("upgrade", opts).await;
    let mut client = stack.client().await;
    let mut admin = stack.admin().await;
    let pause =
        |paused| SetLaneSwitchRequest { lane: "main".into(), paused, actor: "ops".into(), reason: "upgrade".into() };
    let store = stack.store();
    let redis = redis::Client::open(stack.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();

    // One run finished under this build (four steps), later read in the old format.
    let finished = submit(&mut client, echoes(4), "").await;
    watch_to_end(&mut client, &finished, WITHIN).await.unwrap();
    // Others queued behind a paused lane, then rewritten to the old format.
    admin.set_lane_switch(pause(true)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(submit(&mut client, echoes(3), "").await);
    }
    for id in &queued {
        let state = store.load_run(id).await.unwrap().unwrap();
        let old = RunState { schema_version: 1, ..state };
        let key = format!("baton:run:{{{id}}}");
        let _: () =
            redis::cmd("HSET").arg(&key).arg("state").arg(old.encode_to_vec()).query_async(&mut conn).await.unwrap();
        let _: () = redis::cmd("DEL").arg(format!("baton:spec:{{{id}}}")).query_async(&mut conn).await.unwrap();
    }
    // The finished run, too, read back in the old format: its steps inline, no step list.
    let done = store.load_run(&finished).await.unwrap().unwrap();
    let (steps, _) = store.steps_page(&finished, 0, 100).await.unwrap();
    let old = RunState { schema_version: 1, steps, ..done };
    let _: () = redis::cmd("HSET")
        .arg(format!("baton:run:{{{finished}}}"))
        .arg("state")
        .arg(old.encode_to_vec())
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("baton:spec:{{{finished}}}"))
        .arg(format!("baton:steps:{{{finished}}}"))
        .query_async(&mut conn)
        .await
        .unwrap();

    // This build's workers take them over: every queued run completes, in order.
    admin.set_lane_switch(pause(false)).await.unwrap();
    for id in &queued {
        let events = watch_to_end(&mut client, id, WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
        assert_eq!(check_history(&events), Ok(3), "{events:?}");
        let run = client.get_run(GetRunRequest { run_id: id.clone(), latest_steps: 0 }).await.unwrap().into_inner();
        assert_eq!((run.status(), run.steps_completed), (RunStatus::Succeeded, 3));
    }
    // The old-format finished run reads as before: its four steps, its spec.
    let run = client.get_run(GetRunRequest { run_id: finished.clone(), latest_steps: 0 }).await.unwrap().into_inner();
    assert_eq!(run.status(), RunStatus::Succeeded);
    assert!(run.spec.is_some());
    let page = client
        .list_steps(ListStepsRequest { run_id: finished.clone(), page_size: 10, page_token: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.steps.len(), 4, "{page:?}");
}
