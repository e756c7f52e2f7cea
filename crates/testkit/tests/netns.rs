//! The fleet across hosts: Redis, the broker, the gateway, three workers, the scheduler and the
//! reaper each in a network namespace of its own, and the links between them cut or made lossy
//! (crates/testkit/src/netns). Needs root or CAP_NET_ADMIN, `ip` and `nft`
//! (scripts/install-deps.sh); BATON_SKIP_NETNS=1 skips these tests where that cannot be had.
//! `loadtest/scripts/netns.sh` runs the same scenarios longer and records the figures.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_testkit::netns::hosts::leftovers_of_this_process;
use baton_testkit::netns::{scenarios, Fleet, FleetOptions, Report};

fn skipped() -> bool {
    let skip = std::env::var_os("BATON_SKIP_NETNS").is_some();
    if skip {
        eprintln!("BATON_SKIP_NETNS is set: the network-namespace tests did not run");
    }
    skip
}

fn assert_passed(reports: &[Report], fleet: &Fleet) {
    let text: String = reports.iter().map(ToString::to_string).collect();
    eprintln!("{text}");
    assert!(reports.iter().all(|r| r.problems.is_empty()), "{text}\n{}", fleet.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_cut_between_hosts_lose_nothing_and_repeat_nothing() {
    if skipped() {
        return;
    }
    let fleet = Fleet::start("netns-cuts", FleetOptions::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let reports = vec![
        scenarios::worker_cut_from_redis(&fleet).await,
        scenarios::worker_cut_from_broker(&fleet).await,
        scenarios::gateway_cut_from_broker(&fleet).await,
    ];
    assert_passed(&reports, &fleet);
    drop(fleet);
    assert_eq!(leftovers_of_this_process(), Vec::<String>::new(), "namespaces or bridges left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w1_completes_with_latency_and_loss_between_workers_and_redis() {
    if skipped() {
        return;
    }
    // 10 ms each way: 20 ms more per round trip to Redis; 1 % of the packets dropped.
    let opts = FleetOptions { worker_redis_delay: Duration::from_millis(10), ..FleetOptions::default() };
    let fleet = Fleet::start("netns-lossy", opts).await.unwrap_or_else(|e| panic!("{e}"));
    let relay = fleet.relay.as_ref().unwrap().addr;
    for worker in &fleet.workers {
        fleet.hosts().lossy(&worker.host, fleet.hosts().local_ip(), relay.port(), 1).unwrap();
    }
    let report = scenarios::w1(&fleet, "lossy", 40, 10, 16).await;
    assert_passed(&[report], &fleet);
    drop(fleet);
    assert_eq!(leftovers_of_this_process(), Vec::<String>::new(), "namespaces or bridges left behind");
}
