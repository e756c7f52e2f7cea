//! A frozen broker holds no async thread: with the broker stopped (SIGSTOP: its port open,
//! nothing answered) for 20 s, a run the worker already claimed keeps committing steps (its
//! slice needs no broker until it ends), the worker keeps beating into `baton:workers`, so the
//! reaper never takes its runs away, and the consume loop keeps going round (claims, wake-ups,
//! lane holds and the drain wait on it). The worker runs on one runtime thread (as in a pod
//! with one CPU) and started moments before the freeze, so its partition-owner watchdog reads
//! the topic's metadata (a 2 s wait on a frozen broker) and its idle pause the committed
//! offsets while the broker is away: both happen off the loop.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use baton_proto::v1::{Budget, GetRunRequest, Run, RunSpec, RunStatus};
use baton_testkit::runs::{check_history, final_status, script, submit, wait_for_run, watch_to_end};
use baton_testkit::{Stack, StackOptions};

const STEPS: u32 = 500;
const FROZEN_FOR: Duration = Duration::from_secs(20);
const LIVENESS_TTL_MS: i64 = 1_000;

fn sleeps(n: u32) -> RunSpec {
    let steps: Vec<(&str, &str)> = (0..n).map(|_| ("sleep", r#"{"ms":50}"#)).collect();
    RunSpec { budget: Some(Budget { max_steps: n, ..Budget::default() }), ..script(&steps) }
}

/// The value of an unlabelled series in Prometheus text.
fn gauge(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_stops_neither_claimed_runs_nor_the_worker_beat() {
    let mut opts = StackOptions::default();
    opts.env.extend([
        // One slice covers the whole freeze: nothing the run does needs the broker until it ends.
        ("BATON_WORKER_SLICE_MAX_MS".to_string(), "600000".to_string()),
        ("BATON_WORKER_LIVENESS_TTL_MS".to_string(), LIVENESS_TTL_MS.to_string()),
    ]);
    let mut stack = Stack::infra("frozen-broker", opts).await;
    stack.start_gateway().await;
    stack.start("reaper").await;
    let worker = stack.start_with("worker", &[("TOKIO_WORKER_THREADS", "1")]).await;
    let ready_at = Instant::now();
    let worker_id = stack.instance_id(worker).expect("worker id in its log");
    let mut client = stack.client().await;
    let run_id = submit(&mut client, sleeps(STEPS), "").await;
    // Freeze as soon as the run is claimed: the watchdog's first read (two seconds after the
    // worker's loop started) then meets a frozen broker.
    let started = |r: &Run| r.steps_completed >= 1;
    wait_for_run(&mut client, &run_id, Duration::from_secs(60), started)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    let redis = redis::Client::open(stack.redis.url()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    stack.broker.proc.freeze();
    println!("broker frozen {:?} after the worker was ready", ready_at.elapsed());
    let frozen_at = Instant::now();
    let (mut steps, mut progressed_at) = (0, Instant::now());
    let (mut longest_stall, mut oldest_beat_ms, mut oldest_tick) = (Duration::ZERO, 0i64, 0f64);
    while frozen_at.elapsed() < FROZEN_FOR {
        let run = client.get_run(GetRunRequest { run_id: run_id.clone(), latest_steps: 0 }).await.unwrap().into_inner();
        if run.steps_completed > steps {
            (steps, progressed_at) = (run.steps_completed, Instant::now());
        }
        longest_stall = longest_stall.max(progressed_at.elapsed());
        // The beat's age by Redis's clock, as the reaper judges it.
        let beat: Option<i64> =
            redis::cmd("ZSCORE").arg(baton_store::keys::WORKERS).arg(&worker_id).query_async(&mut redis).await.unwrap();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut redis).await.unwrap();
        let now_ms = secs * 1000 + micros / 1000;
        oldest_beat_ms = oldest_beat_ms.max(beat.map_or(i64::MAX, |at| now_ms - at));
        // How long ago the consume loop last went round (exported every second).
        let metrics = stack.metrics(worker).await;
        oldest_tick = oldest_tick.max(gauge(&metrics, "baton_service_loop_tick_age_seconds").unwrap_or(f64::MAX));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.broker.proc.thaw();
    println!(
        "during the freeze: longest stall between commits {longest_stall:?}, oldest beat {oldest_beat_ms} ms, \
         oldest consume loop tick {oldest_tick} s"
    );
    assert!(steps < STEPS, "the run finished during the freeze: make it longer");
    assert!(
        longest_stall < Duration::from_secs(5),
        "the claimed run stopped committing for {longest_stall:?}\n{}",
        stack.logs()
    );
    assert!(
        oldest_beat_ms < LIVENESS_TTL_MS,
        "the worker's beat was {oldest_beat_ms} ms old: the reaper declares it dead\n{}",
        stack.logs()
    );

    // The loop goes round every 250 ms when idle; a metadata read on it would hold it 2 s.
    assert!(oldest_tick < 1.5, "the consume loop stood still for {oldest_tick} s: held by a broker call");

    let events = watch_to_end(&mut client, &run_id, Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert_eq!(final_status(&events), RunStatus::Succeeded);
    assert_eq!(check_history(&events), Ok(STEPS));
    assert!(
        events.iter().filter(|e| e.step > 0).all(|e| e.worker.is_empty() || e.worker == worker_id),
        "no step moved"
    );
}
