//! The one config loader of the fleet: defaults → TOML file → `BATON_*` env → `--set` flags,
//! then [`Config::validate`]. Every service reads the same [`Config`]; each uses its own section.

mod auth;
mod config;
mod controls;
mod infra;
pub mod manifest;
mod planners;
mod runs;
mod services;
mod validate;

use std::path::PathBuf;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;

pub use auth::*;
pub use config::*;
pub use controls::*;
pub use infra::*;
pub use planners::*;
pub use runs::*;
pub use services::*;

/// A config that could not be loaded or is invalid. The message names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file does not exist or cannot be read.
    #[error("config file {path}: {reason}")]
    File {
        /// Path given with `--config` or `BATON_CONFIG`.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An environment variable or `--set` flag names no config key, or is malformed.
    #[error("{source_name}: {reason}")]
    Key {
        /// The variable or flag, e.g. `BATON_WORKER_LEASE_TTL_MS`.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// A value has the wrong type (figment's message names the key).
    #[error("{0}")]
    Parse(String),
    /// A value is out of range or inconsistent with another.
    #[error("{key}: {reason}")]
    Invalid {
        /// Dotted key, e.g. `worker.heartbeat_ms`.
        key: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// Where config comes from. Services build it from the process; tests build it from maps.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// TOML file (`--config`, or `BATON_CONFIG` in `env`).
    pub file: Option<PathBuf>,
    /// Environment variables; only those starting with `BATON_` are read.
    pub env: Vec<(String, String)>,
    /// `key=value` overrides from `--set`, with dotted keys.
    pub overrides: Vec<String>,
}

/// Flags every service binary accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// TOML config file (also `BATON_CONFIG`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one key, e.g. `--set worker.concurrency=8` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print the effective config as TOML and exit.
    #[arg(long)]
    pub dump_config: bool,
}

impl ConfigArgs {
    /// Sources from these flags and the process environment.
    pub fn sources(&self) -> Sources {
        Sources { file: self.config.clone(), env: std::env::vars().collect(), overrides: self.overrides.clone() }
    }
}

/// Loads and validates the layered config.
pub fn load(sources: &Sources) -> Result<Config, Error> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    let file = sources
        .file
        .clone()
        .or_else(|| sources.env.iter().find(|(k, _)| k == "BATON_CONFIG").map(|(_, v)| PathBuf::from(v)));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(Error::File { path, reason: "not found".into() });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    for (name, raw) in &sources.env {
        let Some(rest) = name.strip_prefix("BATON_") else { continue };
        if rest == "CONFIG" {
            continue;
        }
        // Variables of other tools (BATON_ADDR for batonctl, BATON_PROFILE for scripts) are not
        // config; a variable naming a config section must name one of its keys.
        let Some(key) = env_key(rest).filter(|k| is_section(k)) else { continue };
        check_known(&key).map_err(|reason| Error::Key { source_name: name.clone(), reason })?;
        figment = figment.merge((key, parse_value(raw)));
    }
    for item in &sources.overrides {
        let (key, raw) = item
            .split_once('=')
            .ok_or_else(|| Error::Key { source_name: format!("--set {item}"), reason: "expected KEY=VALUE".into() })?;
        let key = key.trim().to_string();
        check_known(&key).map_err(|reason| Error::Key { source_name: format!("--set {item}"), reason })?;
        figment = figment.merge((key, parse_value(raw)));
    }
    let config: Config = figment.extract().map_err(|e| Error::Parse(one_line(&e)))?;
    config.validate()?;
    Ok(config)
}

/// The effective config as TOML, for `--dump-config`.
pub fn dump(config: &Config) -> String {
    toml::to_string_pretty(config).unwrap_or_else(|e| format!("# cannot render config: {e}"))
}

/// `WORKER_LEASE_TTL_MS` → `worker.lease_ttl_ms`: the first segment is the section.
fn env_key(rest: &str) -> Option<String> {
    let (section, field) = rest.split_once('_')?;
    if section.is_empty() || field.is_empty() {
        return None;
    }
    Some(format!("{}.{}", section.to_ascii_lowercase(), field.to_ascii_lowercase()))
}

fn is_section(key: &str) -> bool {
    let section = key.split('.').next().unwrap_or_default();
    toml::Table::try_from(Config::default()).is_ok_and(|t| t.get(section).is_some_and(toml::Value::is_table))
}

fn check_known(key: &str) -> Result<(), String> {
    let defaults = toml::Table::try_from(Config::default()).map_err(|e| e.to_string())?;
    let mut parts = key.split('.');
    let (Some(section), Some(field), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{key:?} is not a <section>.<key> config key"));
    };
    match defaults.get(section).and_then(|s| s.as_table()) {
        None => Err(format!("unknown config section {section:?}")),
        Some(t) if !t.contains_key(field) => Err(format!("unknown config key {key:?}")),
        Some(_) => Ok(()),
    }
}

/// A value as TOML if it parses (`8`, `true`, `["a","b"]`), else as a plain string.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn one_line(e: &figment::Error) -> String {
    e.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests;
