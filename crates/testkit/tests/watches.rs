//! Open watches do not starve the request path: a thousand WatchRun streams on parked runs (each
//! waiting on an hour-long timer) stay open while SubmitRun and GetRun keep answering, and a
//! cancelled run's watchers — one, or twenty on the same run — get its next event. The gateway
//! reads every watched stream on one connection of its own; before, each watch held one of the
//! request path's 32 pooled connections in `XREAD BLOCK`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{CancelRunRequest, GetRunRequest, RunEvent, RunStatus, SubmitRunRequest, WatchRunRequest};
use baton_testkit::runs::{echoes, script, submit};
use baton_testkit::{Stack, StackOptions};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::Streaming;

const PARKED: usize = 1000;
/// Extra watchers of the first run (the gateway allows 1,024 watches).
const SAME_RUN: usize = 20;
/// Gateway connections the watches are spread over (HTTP/2 caps the streams of one).
const CHANNELS: usize = 10;
const WITHIN: Duration = Duration::from_secs(120);

async fn client_on_own_channel(stack: &Stack) -> RunServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{}", stack.grpc_port)).unwrap().connect().await;
    RunServiceClient::new(channel.expect("connect to gateway"))
}

/// Watches `run_id` until its run is seen parked (history or live); returns the open stream.
async fn watch_until_parked(mut client: RunServiceClient<Channel>, run_id: String) -> (String, Streaming<RunEvent>) {
    let request = WatchRunRequest { run_id: run_id.clone(), after_seq: 0 };
    let mut stream = client.watch_run(request).await.unwrap_or_else(|e| panic!("watch {run_id}: {e:?}")).into_inner();
    loop {
        match stream.message().await {
            Ok(Some(event)) if event.status() == RunStatus::Waiting => return (run_id, stream),
            Ok(Some(_)) => {}
            other => panic!("watch of {run_id} ended before the run parked: {other:?}"),
        }
    }
}

/// True if nothing arrives on `stream` right now and it has not ended.
async fn still_open(stream: &mut Streaming<RunEvent>) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_millis(5), stream.message()).await {
        Err(_) => Ok(()),
        Ok(other) => Err(format!("{other:?}")),
    }
}

/// Events on `stream` up to the first with `status`, at most `WITHIN`.
async fn until_status(stream: &mut Streaming<RunEvent>, status: RunStatus) -> RunEvent {
    let wait = async {
        loop {
            let event = stream.message().await.expect("the stream is healthy").expect("the stream is still open");
            if event.status() == status {
                return event;
            }
        }
    };
    tokio::time::timeout(WITHIN, wait).await.expect("the event within the bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_open_watches_leave_submit_and_get_answering() {
    let stack = Stack::full("watches", StackOptions::default()).await;
    let client = stack.client().await;

    // A thousand runs parked on an hour-long timer.
    let parked = script(&[("wait", r#"{"ms":3600000}"#), ("echo", "{}")]);
    let mut submits = JoinSet::new();
    for part in 0..16 {
        let (mut client, spec) = (client.clone(), parked.clone());
        submits.spawn(async move {
            let mut ids = Vec::new();
            for _ in (part..PARKED).step_by(16) {
                ids.push(submit(&mut client, spec.clone(), "").await);
            }
            ids
        });
    }
    let mut run_ids = Vec::new();
    while let Some(ids) = submits.join_next().await {
        run_ids.extend(ids.unwrap());
    }
    assert_eq!(run_ids.len(), PARKED);

    // One watch per run, and twenty more on the first, spread over ten connections.
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(client_on_own_channel(&stack).await);
    }
    let watched = run_ids.iter().cloned().chain(std::iter::repeat_n(run_ids[0].clone(), SAME_RUN));
    let mut opening = JoinSet::new();
    for (i, run_id) in watched.enumerate() {
        opening.spawn(watch_until_parked(channels[i % CHANNELS].clone(), run_id));
    }
    let mut watches: Vec<(String, Streaming<RunEvent>)> = Vec::new();
    let opened = tokio::time::timeout(WITHIN, async {
        while let Some(watch) = opening.join_next().await {
            watches.push(watch.unwrap());
        }
    })
    .await;
    assert!(opened.is_ok(), "{} of {} watches saw their run park\n{}", watches.len(), PARKED + SAME_RUN, stack.logs());
    println!("{} watches open", watches.len());

    // The request path keeps answering with every watch open.
    let mut caller = stack.client().await;
    for (i, parked_id) in run_ids.iter().enumerate().take(20) {
        let request = SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() };
        let answer = tokio::time::timeout(WITHIN, caller.submit_run(request)).await.expect("SubmitRun answers");
        let run_id =
            answer.unwrap_or_else(|e| panic!("SubmitRun {i} with the watches open: {e:?}")).into_inner().run_id;
        let request = GetRunRequest { run_id: parked_id.clone(), latest_steps: 0 };
        let got = tokio::time::timeout(WITHIN, caller.get_run(request)).await.expect("GetRun answers");
        let run = got.unwrap_or_else(|e| panic!("GetRun {i} with the watches open: {e:?}")).into_inner();
        assert_eq!(run.status(), RunStatus::Waiting);
        assert!(!run_id.is_empty());
    }
    for (run_id, stream) in &mut watches {
        if let Err(e) = still_open(stream).await {
            panic!("the watch of {run_id} did not stay open: {e}");
        }
    }

    // A cancel reaches the run's watchers: the next event is the run's end.
    let cancelled: Vec<String> = run_ids[..5].to_vec();
    for run_id in &cancelled {
        let request = CancelRunRequest { run_id: run_id.clone(), reason: "test".into() };
        caller.cancel_run(request).await.unwrap_or_else(|e| panic!("cancel {run_id}: {e:?}"));
    }
    let mut told = 0;
    for (run_id, stream) in &mut watches {
        if !cancelled.contains(run_id) {
            continue;
        }
        let event = until_status(stream, RunStatus::Cancelled).await;
        assert_eq!(&event.run_id, run_id, "{event:?}");
        told += 1;
    }
    assert_eq!(told, cancelled.len() + SAME_RUN, "every watcher of a cancelled run was told");
    for (run_id, stream) in watches.iter_mut().filter(|(r, _)| !cancelled.contains(r)).take(50) {
        if let Err(e) = still_open(stream).await {
            panic!("the watch of {run_id} did not stay open after the cancels: {e}");
        }
    }
}
