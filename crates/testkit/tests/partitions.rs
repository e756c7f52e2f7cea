//! The workers of a lane share its task topic's partitions under Redis leases: every partition
//! has exactly one holder and the holders split them equally; a worker that joins takes its share
//! from the others while runs keep stepping; a worker that stops cleanly gives its partitions back
//! at once; a killed worker's partitions move when their leases lapse; and what each worker
//! publishes for routing (`baton:owners:<lane>`) matches the leases.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton_proto::v1::RunStatus;
use baton_testkit::runs::{check_history, script, submit, watch_to_end};
use baton_testkit::{Stack, StackOptions};

const PARTITIONS: u16 = 6;

/// Partition → the worker whose lease holds it, and partition → the worker published as owner.
async fn holders(conn: &mut redis::aio::MultiplexedConnection) -> (BTreeMap<u16, String>, BTreeMap<u16, String>) {
    let mut leases = BTreeMap::new();
    for p in 0..PARTITIONS {
        let holder: Option<String> =
            redis::cmd("GET").arg(baton_store::keys::shard_owner(p, "worker-main")).query_async(conn).await.unwrap();
        if let Some(holder) = holder {
            leases.insert(p, holder);
        }
    }
    let published: BTreeMap<String, String> =
        redis::cmd("HGETALL").arg(baton_store::keys::owners("main")).query_async(conn).await.unwrap();
    let published =
        published.into_iter().filter_map(|(p, v)| Some((p.parse().ok()?, v.rsplit_once('|')?.0.to_string()))).collect();
    (leases, published)
}

/// Waits until the partitions are held by exactly `workers`, in equal shares, every one of them
/// published as its holder's; returns the holders.
async fn settled(
    stack: &Stack,
    conn: &mut redis::aio::MultiplexedConnection,
    workers: &[usize],
    within: Duration,
) -> BTreeMap<u16, String> {
    let ids: Vec<String> = workers.iter().map(|i| stack.instance_id(*i).unwrap()).collect();
    let share = usize::from(PARTITIONS).div_ceil(ids.len());
    let deadline = Instant::now() + within;
    loop {
        let (leases, published) = holders(conn).await;
        let counts: Vec<usize> = ids.iter().map(|id| leases.values().filter(|h| *h == id).count()).collect();
        let every_one_held = leases.len() == usize::from(PARTITIONS) && leases.values().all(|h| ids.contains(h));
        let equal = counts.iter().all(|c| *c + 1 >= share && *c <= share);
        if every_one_held && equal && published == leases {
            return leases;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not shared by {ids:?} within {within:?}: leases {leases:?}, published {published:?}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_the_lanes_partitions_under_leases() {
    let mut opts = StackOptions::default();
    opts.env.retain(|(k, _)| k != "BATON_KAFKA_PARTITIONS");
    opts.env.push(("BATON_KAFKA_PARTITIONS".into(), PARTITIONS.to_string()));
    let mut stack = Stack::full("partition-share", opts).await;
    let mut client = stack.client().await;
    let redis = redis::Client::open(stack.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let first = stack.find("worker");
    settled(&stack, &mut conn, &[first], Duration::from_secs(30)).await;

    // Runs keep stepping while a second and a third worker join and take their shares.
    let steps = [("sleep", r#"{"ms":200}"#); 8];
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(submit(&mut client, script(&steps), "").await);
    }
    let second = stack.start("worker").await;
    let third = stack.start("worker").await;
    let three = settled(&stack, &mut conn, &[first, second, third], Duration::from_secs(30)).await;
    for id in &ids {
        let events = watch_to_end(&mut client, id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(check_history(&events), Ok(8), "run {id}: {events:?}");
        assert_eq!(events.last().unwrap().status(), RunStatus::Succeeded);
    }
    let metrics = stack.metrics(second).await;
    assert!(metrics.contains("baton_worker_partitions_held 2"), "{metrics}");

    // A clean stop gives the partitions back: the two left hold all of them, and partitions the
    // survivors held before stay where they were.
    let second_id = stack.instance_id(second).unwrap();
    stack.services[second].terminate(Duration::from_secs(15)).await.expect("the worker stops");
    let two = settled(&stack, &mut conn, &[first, third], Duration::from_secs(10)).await;
    for (p, holder) in &three {
        if *holder != second_id {
            assert_eq!(two.get(p), Some(holder), "partition {p} moved though its holder stayed");
        }
    }

    // A killed worker's partitions move when their leases lapse (worker.liveness_ttl_ms, 3 s).
    stack.services[third].kill().await;
    settled(&stack, &mut conn, &[first], Duration::from_secs(15)).await;
    let id = submit(&mut client, script(&[("echo", "{}"), ("echo", "{}")]), "").await;
    let events = watch_to_end(&mut client, &id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(events.last().unwrap().status(), RunStatus::Succeeded);
}
