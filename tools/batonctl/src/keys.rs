//! The `keys` subcommands over KeyService (create, list, revoke API keys; admin role) and the
//! text and JSON forms of their answers. The tenant of `keys create` and `keys list` is the
//! global `--tenant`, sent as the request's field (`*` included), never as the tenant header.

use std::process::ExitCode;

use baton_proto::v1::{ApiKey, CreateKeyRequest, CreateKeyResponse, ListKeysRequest, RevokeKeyRequest, Role};
use serde_json::{json, Value};

use crate::cli::KeysCommand;
use crate::format::{one_line, timestamp};
use crate::output::Printer;
use batonctl::client::Client;

/// Runs one `keys` subcommand; `tenant` is the global `--tenant`, if given.
pub async fn run(
    client: &mut Client,
    printer: Printer,
    tenant: Option<&str>,
    command: KeysCommand,
) -> anyhow::Result<ExitCode> {
    let tenant = tenant.unwrap_or_default().to_string();
    match command {
        KeysCommand::Create { role, name } => {
            let req = CreateKeyRequest { tenant, role: role as i32, name };
            let resp = client.keys.create_key(client.request(req)).await?.into_inner();
            printer.emit(|| json_created(&resp), || text_created(&resp))?;
        }
        KeysCommand::List { all } => {
            let req = ListKeysRequest { tenant, include_revoked: all };
            let resp = client.keys.list_keys(client.request(req)).await?.into_inner();
            let json = || json!({ "keys": resp.keys.iter().map(json_key).collect::<Vec<_>>() });
            printer.emit(json, || resp.keys.iter().map(text_line).collect::<Vec<_>>().join("\n"))?;
        }
        KeysCommand::Revoke { key_id, reason } => {
            let resp = client.keys.revoke_key(client.request(RevokeKeyRequest { key_id, reason })).await?.into_inner();
            let key = resp.key.unwrap_or_default();
            printer.emit(|| json_key(&key), || format!("revoked {}", text_line(&key)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn role_name(raw: i32) -> String {
    Role::try_from(raw)
        .map_or_else(|_| format!("role({raw})"), |r| r.as_str_name().trim_start_matches("ROLE_").to_ascii_lowercase())
}

/// `<id> tenant=<t> role=<r> created=<time> by=<who> [revoked=<time> by=<who>]  # <name>`
pub fn text_line(k: &ApiKey) -> String {
    let mut line = format!(
        "{} tenant={} role={} created={} by={}",
        k.key_id,
        k.tenant,
        role_name(k.role),
        timestamp(k.created_at_ms),
        k.created_by
    );
    if k.revoked_at_ms > 0 {
        line.push_str(&format!(" revoked={} by={}", timestamp(k.revoked_at_ms), k.revoked_by));
    }
    if !k.name.is_empty() {
        line.push_str(&format!("  # {}", one_line(&k.name)));
    }
    line
}

/// The key's line, then its secret and how to use it.
fn text_created(resp: &CreateKeyResponse) -> String {
    let key = resp.key.clone().unwrap_or_default();
    format!(
        "{}\nsecret: {}\n(shown once: store it now; send it as `authorization: Bearer <secret>`, e.g. BATON_API_KEY)",
        text_line(&key),
        resp.secret
    )
}

fn json_key(k: &ApiKey) -> Value {
    json!({
        "key_id": k.key_id,
        "tenant": k.tenant,
        "role": role_name(k.role),
        "name": k.name,
        "created_by": k.created_by,
        "created_at_ms": k.created_at_ms,
        "revoked_at_ms": k.revoked_at_ms,
        "revoked_by": k.revoked_by,
    })
}

fn json_created(resp: &CreateKeyResponse) -> Value {
    json!({ "key": json_key(&resp.key.clone().unwrap_or_default()), "secret": resp.secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_line_without_its_secret() {
        let k = ApiKey {
            key_id: "key_1".into(),
            tenant: "acme".into(),
            role: Role::Submitter as i32,
            name: "ci\nbot".into(),
            created_by: "bootstrap".into(),
            created_at_ms: 1_700_000_000_123,
            ..Default::default()
        };
        assert_eq!(
            text_line(&k),
            "key_1 tenant=acme role=submitter created=2023-11-14T22:13:20.123Z by=bootstrap  # ci\\nbot"
        );
        let created = CreateKeyResponse { key: Some(k), secret: "baton_s3cret".into() };
        assert!(text_created(&created).contains("secret: baton_s3cret"));
        assert_eq!(json_created(&created)["key"]["role"], "submitter");
    }
}
