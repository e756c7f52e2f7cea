//! What a crash of the Redis *host* leaves on disk: the append-only file cut back to what had
//! been fsynced. A sampler records the length of Redis's current AOF increment file every 50 ms,
//! so a crash can cut it back to its length a given time before (what `appendfsync everysec`
//! may lose), or keep all of it (`always`: every write was fsynced before it was answered).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lengths of the AOF increment file over the last seconds, newest last.
#[derive(Clone, Default)]
pub struct AofSamples(Arc<Mutex<VecDeque<(Instant, PathBuf, u64)>>>);

const KEEP: Duration = Duration::from_secs(10);

impl AofSamples {
    /// Samples the AOF of the Redis whose data directory is `dir` every 50 ms until `stop`.
    pub fn start(dir: &Path, stop: tokio_util::sync::CancellationToken) -> Self {
        let samples = Self::default();
        let (out, dir) = (samples.clone(), dir.to_path_buf());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Some(file) = increment_file(&dir) {
                    let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                    let mut s = out.0.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_back((Instant::now(), file, len));
                    while s.front().is_some_and(|(at, _, _)| at.elapsed() > KEEP) {
                        s.pop_front();
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        samples
    }

    /// Cuts the AOF in `dir` back to its length `lost` ago (all of it now if `lost` is zero).
    /// Call with Redis frozen. Returns the bytes cut.
    pub fn cut_back(&self, dir: &Path, lost: Duration) -> u64 {
        let Some(file) = increment_file(dir) else { return 0 };
        let now = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        if lost.is_zero() {
            return 0;
        }
        let samples = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let then =
            samples.iter().rev().find(|(at, f, _)| at.elapsed() >= lost && *f == file).map_or(0, |(_, _, len)| *len);
        if then < now {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&file) {
                let _ = f.set_len(then);
            }
        }
        now.saturating_sub(then)
    }
}

/// The AOF increment file Redis appends to: the last `type i` entry of the manifest in
/// `<dir>/appendonlydir` (Redis 7's multi-part AOF).
fn increment_file(dir: &Path) -> Option<PathBuf> {
    let aof_dir = dir.join("appendonlydir");
    let manifest = std::fs::read_dir(&aof_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "manifest"))?;
    let text = std::fs::read_to_string(manifest).ok()?;
    let name = text.lines().rfind(|l| l.contains(" type i"))?.split_whitespace().nth(1)?.to_string();
    Some(aof_dir.join(name))
}
