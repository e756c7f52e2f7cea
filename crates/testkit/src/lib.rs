//! Test helpers that start the real stack as separate processes on loopback: a private
//! `redis-server`, a private `tansu` broker (sqlite storage), and the Baton service binaries;
//! and the real peers an agent run talks to: a scripted OpenAI-compatible model server, an HTTP
//! tool server, and a gRPC agent/tool server. Everything lives in a temp dir and is killed
//! when dropped; every wait is bounded.
#![allow(clippy::unwrap_used)]

pub mod agents;
mod aof;
pub mod chaos;
pub mod cluster;
pub mod events_audit;
pub mod grpc_server;
pub mod model_server;
pub mod netns;
pub mod otlp;
mod process;
pub mod runs;
mod stack;
pub mod tool_server;

pub use process::{bin_path, find_executable, free_port, http_get, http_get_at, wait_for_addr, wait_for_port, Proc};
pub use stack::{Broker, Redis, Stack, StackOptions};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A fresh temp dir for one test, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates `baton-<label>-<pid>-<n>` under the system temp dir.
    pub fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "baton-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("BATON_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
