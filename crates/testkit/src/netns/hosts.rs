//! Hosts on one machine: a Linux network namespace per host, each joined by a veth pair to a
//! bridge in the test's own namespace (which holds the bridge's address), and the faults a
//! network makes between them — a cut link (packets silently dropped, as a partition drops
//! them) and a lossy one — as nftables rules inside the host's namespace. Everything a
//! [`Hosts`] made is removed when it is dropped; namespaces a killed test left behind (named
//! after a process that is gone) are removed by the next one.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::find_executable;

/// One host: a namespace with one interface on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// Short name, e.g. `worker-1`.
    pub name: String,
    /// Its namespace (`baton-<pid>-<n>-<name>`).
    pub ns: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
    /// The host side of its veth pair (in the test's namespace, attached to the bridge).
    link: String,
}

/// A fault on the traffic between a host and a peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// Every packet to or from the peer is dropped.
    Cut,
    /// This percentage of the packets to or from the peer's port is dropped.
    Loss { port: u16, percent: u8 },
}

/// The namespaces, links and faults of one test; removed on drop.
pub struct Hosts {
    prefix: String,
    bridge: String,
    net: [u8; 3],
    hosts: Vec<Host>,
    faults: Mutex<BTreeMap<(String, Ipv4Addr), Vec<Fault>>>,
}

impl Hosts {
    /// Creates the bridge (in a free `10.213.x.0/24`) or says why it cannot: not root, no `ip`
    /// or `nft` (scripts/install-deps.sh installs them).
    pub fn new() -> Result<Self, String> {
        for tool in ["ip", "nft"] {
            find_executable(tool).ok_or(format!("`{tool}` not found: run scripts/install-deps.sh"))?;
        }
        remove_leftovers();
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let prefix = format!("baton-{pid}-{n}");
        let bridge = format!("bt{pid}x{n}");
        let used = run("ip", &["-4", "-o", "addr", "show"])?;
        let third = (1..=250u8)
            .find(|x| !used.contains(&format!("10.213.{x}.")))
            .ok_or("no free 10.213.x.0/24 for the bridge")?;
        let net = [10, 213, third];
        run("ip", &["link", "add", &bridge, "type", "bridge"])
            .map_err(|e| format!("cannot create a bridge (root or CAP_NET_ADMIN needed; BATON_SKIP_NETNS=1 skips the tests that need one): {e}"))?;
        let hosts = Self { prefix, bridge, net, hosts: Vec::new(), faults: Mutex::new(BTreeMap::new()) };
        run("ip", &["addr", "add", &format!("{}/24", hosts.local_ip()), "dev", &hosts.bridge])?;
        run("ip", &["link", "set", &hosts.bridge, "up"])?;
        Ok(hosts)
    }

    /// The test's own address on the bridge: hosts reach the test's servers (tool server,
    /// relays) there.
    pub fn local_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], 1)
    }

    /// Adds a host: a namespace with loopback up, a veth pair to the bridge, the next address,
    /// and an empty nftables table for its faults.
    pub fn add(&mut self, name: &str) -> Result<Host, String> {
        let index = self.hosts.len();
        let ip = Ipv4Addr::new(self.net[0], self.net[1], self.net[2], 10 + index as u8);
        let ns = format!("{}-{name}", self.prefix);
        let link = format!("{}h{index}", self.bridge);
        run("ip", &["netns", "add", &ns])?;
        let host = Host { name: name.to_string(), ns: ns.clone(), ip, link: link.clone() };
        self.hosts.push(host.clone());
        run("ip", &["link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
        run("ip", &["link", "set", &link, "master", &self.bridge])?;
        run("ip", &["link", "set", &link, "up"])?;
        in_ns(&ns, "ip", &["link", "set", "lo", "up"])?;
        in_ns(&ns, "ip", &["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        in_ns(&ns, "ip", &["link", "set", "eth0", "up"])?;
        nft(&ns, &rules(&[]))?;
        Ok(host)
    }

    /// Cuts `host` off from `peer`: every packet between them is dropped (no reset, no error —
    /// what a partition does), until [`Hosts::heal`].
    pub fn cut(&self, host: &Host, peer: Ipv4Addr) -> Result<(), String> {
        self.change(host, peer, |faults| faults.push(Fault::Cut))
    }

    /// Drops `percent` % of the packets between `host` and `peer`'s `port`, either way.
    pub fn lossy(&self, host: &Host, peer: Ipv4Addr, port: u16, percent: u8) -> Result<(), String> {
        self.change(host, peer, |faults| faults.push(Fault::Loss { port, percent }))
    }

    /// Removes every fault between `host` and `peer`.
    pub fn heal(&self, host: &Host, peer: Ipv4Addr) -> Result<(), String> {
        self.change(host, peer, Vec::clear)
    }

    /// The hosts added so far.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    fn change(&self, host: &Host, peer: Ipv4Addr, edit: impl FnOnce(&mut Vec<Fault>)) -> Result<(), String> {
        let mut all = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        edit(all.entry((host.ns.clone(), peer)).or_default());
        let mine: Vec<(Ipv4Addr, Fault)> = all
            .iter()
            .filter(|((ns, _), _)| *ns == host.ns)
            .flat_map(|((_, peer), faults)| faults.iter().map(|f| (*peer, *f)))
            .collect();
        nft(&host.ns, &rules(&mine))
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = run("ip", &["link", "del", &host.link]);
            let _ = run("ip", &["netns", "del", &host.ns]);
        }
        let _ = run("ip", &["link", "del", &self.bridge]);
    }
}

/// The namespaces and bridges this process made and has not removed (none once every
/// [`Hosts`] is dropped): what a test checks to prove it cleaned up.
pub fn leftovers_of_this_process() -> Vec<String> {
    let pid = std::process::id();
    let mut found: Vec<String> =
        namespaces().into_iter().filter(|ns| ns.starts_with(&format!("baton-{pid}-"))).collect();
    found.extend(bridges().into_iter().filter(|b| b.starts_with(&format!("bt{pid}x"))));
    found
}

/// The nftables script that replaces a host's rules with `faults`.
fn rules(faults: &[(Ipv4Addr, Fault)]) -> String {
    let mut out = String::new();
    let mut inp = String::new();
    for (peer, fault) in faults {
        match fault {
            Fault::Cut => {
                out.push_str(&format!("    ip daddr {peer} drop\n"));
                inp.push_str(&format!("    ip saddr {peer} drop\n"));
            }
            Fault::Loss { port, percent } => {
                out.push_str(&format!("    ip daddr {peer} tcp dport {port} numgen random mod 100 < {percent} drop\n"));
                inp.push_str(&format!("    ip saddr {peer} tcp sport {port} numgen random mod 100 < {percent} drop\n"));
            }
        }
    }
    format!(
        "table inet baton {{}}\nflush table inet baton\ntable inet baton {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n{out}  }}\n  chain in {{\n    type filter hook input priority 0; policy accept;\n{inp}  }}\n}}\n"
    )
}

fn nft(ns: &str, script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(exe("ip"))
        .args(["netns", "exec", ns, &exe("nft"), "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    child.stdin.take().ok_or("nft: no stdin")?.write_all(script.as_bytes()).map_err(|e| format!("nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("nft in {ns}: {}\n{script}", String::from_utf8_lossy(&out.stderr))),
    }
}

fn in_ns(ns: &str, tool: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["netns", "exec", ns];
    let tool = exe(tool);
    all.push(&tool);
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Runs `tool args`; its stdout, or an error with its stderr.
fn run(tool: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(exe(tool)).args(args).output().map_err(|e| format!("{tool}: {e}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(format!("{tool} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())),
    }
}

fn exe(tool: &str) -> String {
    find_executable(tool).map_or(tool.to_string(), |p| p.display().to_string())
}

fn namespaces() -> Vec<String> {
    let list = run("ip", &["netns", "list"]).unwrap_or_default();
    list.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

fn bridges() -> Vec<String> {
    let list = run("ip", &["-o", "link", "show", "type", "bridge"]).unwrap_or_default();
    list.lines().filter_map(|l| l.split(": ").nth(1)).map(|n| n.split('@').next().unwrap_or(n).to_string()).collect()
}

/// Removes the namespaces and bridges of test processes that are gone (killed mid-test).
fn remove_leftovers() {
    let gone = |pid: &str| pid.parse::<u32>().is_ok_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists());
    for ns in namespaces() {
        if ns.strip_prefix("baton-").and_then(|rest| rest.split('-').next()).is_some_and(gone) {
            let _ = run("ip", &["netns", "del", &ns]);
        }
    }
    for bridge in bridges() {
        if bridge.strip_prefix("bt").and_then(|rest| rest.split('x').next()).is_some_and(gone) {
            let _ = run("ip", &["link", "del", &bridge]);
        }
    }
}
