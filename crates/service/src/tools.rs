//! The tool catalog a service holds: the built-ins plus the tool manifest (`tools.manifest`),
//! re-read without a restart when the file changes or when any service is asked to
//! (`AdminService/ReloadTools` bumps `baton:tools:reload` in Redis, which every service watches).
//! An invalid manifest is rejected: the previous catalog stays in force, and a log line, a
//! metric and an audit entry say why.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use baton_core::catalog::Catalog;
use baton_store::{AuditEntry, Store};
use baton_telemetry::now_ms;
use tokio_util::sync::CancellationToken;

/// The catalog in force, and how it got there.
#[derive(Clone)]
pub struct Loaded {
    /// Every tool the fleet knows.
    pub catalog: Arc<Catalog>,
    /// When it was loaded (ms since epoch).
    pub loaded_at_ms: i64,
    /// Why the latest attempt to load a changed manifest was rejected (empty if it was not).
    pub last_error: String,
}

/// A service's live tool catalog.
pub struct LiveTools {
    path: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    stamp: RwLock<Option<(SystemTime, u64)>>,
}

impl LiveTools {
    /// Loads the manifest named in `tools` (built-ins only when none is named).
    pub fn open(tools: &baton_config::Tools) -> Result<Arc<Self>, baton_config::Error> {
        let path = (!tools.manifest.is_empty()).then(|| PathBuf::from(&tools.manifest));
        let catalog = match &path {
            Some(p) => baton_config::manifest::load_manifest(p)?,
            None => Catalog::builtins(),
        };
        let stamp = path.as_deref().and_then(file_stamp);
        let loaded = Loaded { catalog: Arc::new(catalog), loaded_at_ms: now_ms(), last_error: String::new() };
        Ok(Arc::new(Self { path, loaded: RwLock::new(loaded), stamp: RwLock::new(stamp) }))
    }

    /// The catalog in force.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.snapshot().catalog
    }

    /// The catalog in force with its load time and last rejection.
    pub fn snapshot(&self) -> Loaded {
        self.loaded.read().map(|l| l.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The manifest's path as configured (empty: built-ins only).
    pub fn path(&self) -> String {
        self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    }

    /// Re-reads the manifest. `Ok(true)`: a new catalog is in force; `Ok(false)`: unchanged;
    /// `Err(reason)`: rejected, the previous catalog stays. `actor` names who asked, for the audit.
    pub async fn reload(&self, store: &Store, actor: &str) -> Result<bool, String> {
        let Some(path) = &self.path else { return Ok(false) };
        *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = file_stamp(path);
        let current = self.catalog();
        let audit = |outcome: &str, detail: String| AuditEntry {
            at_ms: now_ms(),
            actor: actor.to_string(),
            action: "tools.reload".into(),
            outcome: outcome.into(),
            detail,
        };
        match baton_config::manifest::load_manifest(path) {
            Ok(catalog) if catalog.version() == current.version() => Ok(false),
            Ok(catalog) => {
                let detail =
                    format!("manifest {} version {} → {}", path.display(), current.version(), catalog.version());
                tracing::info!(manifest = %path.display(), from = current.version(), to = catalog.version(), "tool manifest reloaded");
                metrics::counter!(crate::metric_definitions::MANIFEST_RELOADS, "result" => "loaded").increment(1);
                let fresh = Loaded { catalog: Arc::new(catalog), loaded_at_ms: now_ms(), last_error: String::new() };
                *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                if let Err(e) = store.audit(&audit("loaded", detail)).await {
                    tracing::warn!(error = %e, "cannot write the audit entry of a manifest reload");
                }
                Ok(true)
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(manifest = %path.display(), error = %reason, version = current.version(),
                    "tool manifest rejected; the previous one stays in force");
                metrics::counter!(crate::metric_definitions::MANIFEST_RELOADS, "result" => "rejected").increment(1);
                self.loaded.write().unwrap_or_else(|e| e.into_inner()).last_error = reason.clone();
                if let Err(e) = store.audit(&audit("rejected", reason.clone())).await {
                    tracing::warn!(error = %e, "cannot write the audit entry of a rejected manifest");
                }
                Err(reason)
            }
        }
    }

    /// Watches the manifest file and the fleet's reload signal every `every` until `stop`.
    pub fn spawn_watch(self: &Arc<Self>, store: Store, every: Duration, actor: String, stop: CancellationToken) {
        let Some(path) = self.path.clone() else { return };
        let live = self.clone();
        tokio::spawn(async move {
            let mut generation = store.tools_reload_generation().await.unwrap_or(0);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
                let signalled = match store.tools_reload_generation().await {
                    Ok(g) if g != generation => {
                        generation = g;
                        true
                    }
                    _ => false,
                };
                let changed = file_stamp(&path) != *live.stamp.read().unwrap_or_else(|e| e.into_inner());
                if signalled || changed {
                    let _ = live.reload(&store, &actor).await;
                }
            }
        });
    }
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
