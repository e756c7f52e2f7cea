//! The chaos suite at CI size: mixed runs while workers are SIGKILLed every few seconds and the
//! scheduler and reaper are killed; then Redis (AOF) and the broker restart mid-load; then long
//! runs whose workers are killed mid-slice. The mixed runs include approval waits (granted by
//! the driver) and an upstream tool whose circuit breaker trips. Nothing may be lost, no step
//! committed twice, no ledger effect re-executed after its commit, every approval request
//! answered once, and every committed event reaches baton.events. Then the races: cancels
//! racing transitions into a wait, runs dead-lettered while workers die, and workers stalled
//! past their liveness instead of killed.
//! `baton-loadtest --mode chaos` runs the same driver longer (docs/reliability.md).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_testkit::chaos::{run, ChaosConfig};

fn config(restart_infra: bool) -> ChaosConfig {
    ChaosConfig {
        runs: 40,
        submit_per_sec: 4,
        workers: 2,
        kill_every: Duration::from_secs(3),
        kill_control_plane: !restart_infra,
        restart_infra,
        flaky_rate: 0.2,
        settle: Duration::from_secs(120),
        long_runs: false,
        races: false,
        cluster_replicas_acked: None,
        kill_redis_primary: false,
    }
}

fn assert_clean(report: &baton_testkit::chaos::ChaosReport) {
    println!("{}", report.render());
    assert!(report.failures.is_empty(), "the driver failed: {:#?}", report.failures);
    assert_eq!(report.lost, 0, "lost runs: {:?}", report.history_problems);
    assert!(report.history_problems.is_empty(), "{:#?}", report.history_problems);
    assert_eq!(report.duplicates, 0, "ledger effects re-executed after their commit");
    assert!(
        report.events_missing.is_empty(),
        "committed events missing from baton.events: {:?}",
        report.events_missing
    );
    assert!(report.events > report.runs * 3, "the event audit saw too little: {}", report.events);
    assert!(baton_testkit::chaos::passed(report));
    assert!(report.kills >= 3, "the driver killed too little: {}", report.kills);
    assert_eq!(report.statuses.values().sum::<usize>(), report.runs);
}

/// The mixed workload's human gates and breaker trips happened, under the kills.
fn assert_gates_exercised(report: &baton_testkit::chaos::ChaosReport) {
    assert!(report.approvals > 0, "no approval was waited for and granted");
    assert!(report.breaker_holds > 0, "the upstream's breaker never held a step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_scheduler_and_reaper_loses_nothing() {
    let report = run(config(false)).await;
    assert_clean(&report);
    assert_gates_exercised(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_redis_and_the_broker_mid_load_loses_nothing() {
    assert_clean(&run(config(true)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_mid_slice_loses_nothing() {
    let cfg = ChaosConfig { runs: 24, long_runs: true, kill_every: Duration::from_secs(2), ..config(false) };
    let report = run(ChaosConfig { kill_control_plane: false, ..cfg }).await;
    assert_clean(&report);
    assert!(report.recoveries > 0, "no kill interrupted a slice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_dead_letters_and_stalls_racing_the_pipeline_lose_nothing() {
    let cfg = ChaosConfig { runs: 40, races: true, kill_every: Duration::from_secs(3), ..config(false) };
    let report = run(ChaosConfig { kill_control_plane: false, ..cfg }).await;
    assert_clean(&report);
    assert!(report.cancels >= 5, "too few cancels were accepted to race anything: {}", report.cancels);
    assert!(report.dead_letters >= 5, "too few runs dead-lettered: {}", report.dead_letters);
    assert!(report.stalls >= 1, "no worker was stalled");
}
