//! Child processes for tests: locating binaries, free ports, bounded readiness waits, kill/term.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A running child process, killed (SIGKILL) when dropped.
pub struct Proc {
    /// Name for messages, e.g. `worker`.
    pub name: String,
    /// The child.
    pub child: Child,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// Port of its ops endpoint (`/readyz`, `/metrics`), for Baton services.
    pub ops_port: Option<u16>,
}

impl Proc {
    /// Spawns `program` with exactly `env` (the parent environment is not inherited), logging to
    /// `<dir>/<name>.log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], env: &[(String, String)], dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(env.iter().cloned())
            .env("RUST_BACKTRACE", "1")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        Self { name: name.to_string(), child, log, ops_port: None }
    }

    /// OS process id.
    pub fn pid(&self) -> i32 {
        self.child.id().map(|p| p as i32).unwrap_or(-1)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGSTOP: the process keeps its port and pid but answers nothing (a frozen peer).
    pub fn freeze(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGCONT: a frozen process goes on where it stopped.
    pub fn thaw(&self) {
        signal(self.pid(), "CONT");
    }

    /// SIGTERM; returns the exit status if it exits within `within`.
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        signal(self.pid(), "TERM");
        tokio::time::timeout(within, self.child.wait()).await.ok().and_then(Result::ok)
    }

    /// The process's log so far, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn signal(pid: i32, name: &str) {
    if pid > 0 {
        let _ = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts TCP connections on `port`, at most `within`.
pub async fn wait_for_port(port: u16, within: Duration) -> bool {
    wait_for_addr((std::net::Ipv4Addr::LOCALHOST, port).into(), within).await
}

/// Waits until something accepts TCP connections at `addr`, at most `within`.
pub async fn wait_for_addr(addr: std::net::SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let attempt = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr));
        if attempt.await.is_ok_and(|c| c.is_ok()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `GET path` on a loopback port: the status and the body, or `None` if nothing answered.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_at((std::net::Ipv4Addr::LOCALHOST, port).into(), path).await
}

/// `GET path` at `addr`: the status and the body, or `None` if nothing answered within 2 s.
pub async fn http_get_at(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    let connect = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr));
    let mut s = connect.await.ok()?.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Path of a workspace binary (`target/<profile>/<name>`): beside the running executable, or
/// one level up when it is a test in `target/<profile>/deps/`.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let candidates = [dir.join(name), dir.parent().map(|p| p.join(name)).unwrap_or_default()];
    let found = candidates.iter().find(|p| p.is_file());
    found.cloned().unwrap_or_else(|| {
        panic!("{name} not built next to {}: run `cargo build --workspace --bins` first", exe.display())
    })
}

/// Finds an executable on PATH or in `~/.cargo/bin`.
pub fn find_executable(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.push(PathBuf::from("/usr/sbin"));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}
