//! The fleet's redaction rule ([`baton_core::redact`]) from config: the configured field names,
//! and the values of every secret this process can read — model API keys and the tool
//! manifest's secret headers — so a model or a tool that echoes one back cannot put it in an event.

use std::path::Path;

use baton_config::Config;
use baton_core::catalog::{Adapter, HeaderValue};
use baton_core::redact::Redaction;

/// The rule for this process (read once at start: a secret added to the manifest later is
/// masked after a restart).
pub fn redaction(config: &Config) -> Redaction {
    let mut vars: Vec<String> = config.models.values().map(|m| m.api_key_env.clone()).collect();
    if !config.tools.manifest.is_empty() {
        if let Ok(catalog) = baton_config::manifest::load_manifest(Path::new(&config.tools.manifest)) {
            for tool in catalog.tools() {
                if let Adapter::Http(http) = &tool.def.adapter {
                    for (_, value) in &http.headers {
                        if let HeaderValue::Env { var, .. } = value {
                            vars.push(var.clone());
                        }
                    }
                }
            }
        }
    }
    let secrets = vars.iter().filter(|v| !v.is_empty()).filter_map(|v| std::env::var(v).ok());
    Redaction::new(config.telemetry.redact_fields.iter().cloned(), secrets)
}
