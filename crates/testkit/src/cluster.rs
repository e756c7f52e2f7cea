//! A real Redis Cluster on loopback for tests: `primaries` redis-server nodes with
//! `replicas` replicas each (`--cluster-enabled yes`, joined by `redis-cli --cluster create`), a
//! short node timeout so the cluster fails a dead primary over to its replica in seconds, and
//! AOF with `appendfsync always` on every node. Helpers find which node serves a slot, kill a
//! primary, wait for its replica's promotion, and count keys per primary.

use std::time::{Duration, Instant};

use crate::process::find_executable;
use crate::{free_port, wait_for_port, Proc, TempDir};

/// One node of the cluster.
pub struct Node {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The process.
    pub proc: Proc,
    /// How it was started, to start it again.
    args: Vec<String>,
}

/// The running cluster.
pub struct RedisCluster {
    /// Every node, primaries first (as created: each primary's replica is assigned by redis-cli).
    pub nodes: Vec<Node>,
}

/// `cluster-node-timeout`: how long a silent primary stays in charge before its replica takes over.
pub const NODE_TIMEOUT_MS: u64 = 2_000;

impl RedisCluster {
    /// Starts `primaries × (1 + replicas)` nodes in `dir` and joins them into one cluster.
    pub async fn start(dir: &TempDir, primaries: usize, replicas: usize) -> Self {
        let exe = find_executable("redis-server").expect("redis-server not found: run scripts/install-deps.sh");
        let mut nodes = Vec::new();
        for _ in 0..primaries * (1 + replicas) {
            let port = free_port();
            let node_dir = dir.path().join(format!("cluster-{port}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &NODE_TIMEOUT_MS.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                &node_dir.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let proc = Proc::spawn(&format!("redis-cluster-{port}"), &exe, &args, &[], dir.path());
            assert!(
                wait_for_port(port, Duration::from_secs(30)).await,
                "cluster node did not start:\n{}",
                proc.log_text()
            );
            nodes.push(Node { port, proc, args });
        }
        let cli = find_executable("redis-cli").expect("redis-cli not found: run scripts/install-deps.sh");
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas".into(), replicas.to_string(), "--cluster-yes".into()]);
        let out = tokio::process::Command::new(&cli).args(&args).output().await.expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok(Duration::from_secs(30)).await;
        cluster
    }

    /// `redis://127.0.0.1:<port>` of every node still running.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port)).collect()
    }

    /// Waits until every running node reports `cluster_state:ok` and agrees on the primaries.
    pub async fn wait_until_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut all_ok = true;
            for node in &self.nodes {
                match query(node.port, &["CLUSTER", "INFO"]).await {
                    Some(info) if info.contains("cluster_state:ok") => {}
                    Some(_) => all_ok = false,
                    None => {} // a node that was killed
                }
            }
            if all_ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not reach cluster_state:ok");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The port of the primary serving `key`'s slot now.
    pub async fn primary_of(&self, key: &str) -> Option<u16> {
        for node in &self.nodes {
            let Some(slot) = query(node.port, &["CLUSTER", "KEYSLOT", key]).await else { continue };
            let slot: u16 = slot.trim().parse().ok()?;
            let nodes = query(node.port, &["CLUSTER", "NODES"]).await?;
            return primary_for_slot(&nodes, slot);
        }
        None
    }

    /// Ports of the primaries now, by asking a live node.
    pub async fn primaries(&self) -> Vec<u16> {
        for node in &self.nodes {
            if let Some(text) = query(node.port, &["CLUSTER", "NODES"]).await {
                return text
                    .lines()
                    .filter(|l| l.contains("master") && !l.contains("fail"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.split(['@', ':']).nth(1)?.parse().ok())
                    .collect();
            }
        }
        Vec::new()
    }

    /// The port of a replica of the primary on `port`, if it has one.
    pub async fn replica_of(&self, port: u16) -> Option<u16> {
        let text = self.live_nodes_text().await?;
        let primary_id =
            text.lines().find(|l| l.contains(&format!(":{port}@")))?.split_whitespace().next()?.to_string();
        text.lines()
            .filter(|l| l.contains("slave") && l.split_whitespace().nth(3) == Some(primary_id.as_str()))
            .find_map(|l| l.split_whitespace().nth(1)?.split(['@', ':']).nth(1)?.parse().ok())
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the node on `port`: a replica frozen stops receiving
    /// its primary's writes, like one cut off by the network.
    pub fn freeze(&self, port: u16, frozen: bool) {
        if let Some(node) = self.nodes.iter().find(|n| n.port == port) {
            if frozen {
                node.proc.freeze();
            } else {
                node.proc.thaw();
            }
        }
    }

    /// `CLUSTER NODES` as a live node sees it.
    async fn live_nodes_text(&self) -> Option<String> {
        for node in &self.nodes {
            if let Some(text) = query(node.port, &["CLUSTER", "NODES"]).await {
                return Some(text);
            }
        }
        None
    }

    /// Keys held by each primary (`DBSIZE`), by port.
    pub async fn keys_per_primary(&self) -> Vec<(u16, u64)> {
        let mut out = Vec::new();
        for port in self.primaries().await {
            let count = query(port, &["DBSIZE"]).await.and_then(|n| n.trim().parse().ok()).unwrap_or(0);
            out.push((port, count));
        }
        out
    }

    /// SIGKILLs the node on `port`.
    pub async fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            node.proc.kill().await;
        }
    }

    /// Starts the node on `port` again (after [`RedisCluster::kill`]), on its data: it rejoins
    /// the cluster, as a replica of whoever took its slots over. Like a restarted pod.
    pub async fn restart(&mut self, dir: &TempDir, port: u16) {
        let exe = find_executable("redis-server").expect("redis-server");
        let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) else { return };
        node.proc = Proc::spawn(&format!("redis-cluster-{port}-again"), &exe, &node.args, &[], dir.path());
        assert!(wait_for_port(port, Duration::from_secs(30)).await, "cluster node did not restart");
    }

    /// Waits until a replica of `port` was promoted: `port`'s slots are served by another
    /// primary and every live node says `cluster_state:ok`. Returns how long it took.
    pub async fn wait_for_failover(&self, port: u16, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let promoted = match self.live_nodes_text().await {
                Some(text) => {
                    let failed = text
                        .lines()
                        .any(|l| l.contains(&format!(":{port}@")) && l.contains("fail") && !l.contains("fail?"));
                    let slots_elsewhere = text
                        .lines()
                        .filter(|l| l.contains("master") && !l.contains("fail") && !l.contains(&format!(":{port}@")))
                        .count()
                        >= 3;
                    failed && slots_elsewhere
                }
                None => false,
            };
            if promoted {
                self.wait_until_ok(within.saturating_sub(started.elapsed())).await;
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "no replica took over from {port} in {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The primary's port for `slot` in a `CLUSTER NODES` reply: a primary's line ends with the
/// slot ranges it serves (`0-5460`, or a single slot).
fn primary_for_slot(nodes: &str, slot: u16) -> Option<u16> {
    for line in nodes.lines().filter(|l| l.contains("master") && !l.contains("fail")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
        for range in fields.iter().skip(8) {
            let (start, end) = match range.split_once('-') {
                Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
                None => match range.parse::<u16>() {
                    Ok(s) => (s, s),
                    Err(_) => continue,
                },
            };
            if (start..=end).contains(&slot) {
                return Some(port);
            }
        }
    }
    None
}

/// Runs `redis-cli -p <port> <args>`; its output, or `None` if the node does not answer.
async fn query(port: u16, args: &[&str]) -> Option<String> {
    let cli = find_executable("redis-cli")?;
    let out = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::process::Command::new(cli).arg("-p").arg(port.to_string()).args(args).output(),
    )
    .await
    .ok()?
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
        .filter(|s| !s.contains("Could not connect"))
}
