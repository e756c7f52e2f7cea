//! `baton.v1.KeyService`: create, list and revoke API keys. The auth layer lets only the
//! `admin` role in; an admin bound to one tenant manages that tenant's keys, an admin for every
//! tenant (`*`) manages all of them. A secret is 32 random bytes, shown once and stored only as
//! its SHA-256; every change goes to the audit log with the caller as actor.

use std::sync::Arc;

use baton_proto::v1::key_service_server::KeyService;
use baton_proto::v1::{
    ApiKey, CreateKeyRequest, CreateKeyResponse, ListKeysRequest, ListKeysResponse, RevokeKeyRequest, RevokeKeyResponse,
};
use baton_store::AuditEntry;
use baton_telemetry::now_ms;
use ring::rand::SecureRandom as _;
use tonic::{Request, Response, Status};

use crate::auth::{self, Credential, Role, ALL_TENANTS};
use crate::convert::store_error;
use crate::tenant::check_name;
use crate::Gateway;

/// Prefix of every secret Baton issues (so secret scanners and people can tell one).
pub const SECRET_PREFIX: &str = "baton_";

/// Longest key name accepted.
const MAX_NAME: usize = 128;

/// The KeyService implementation.
pub struct Keys(pub Arc<Gateway>);

/// Refuses a caller who may not manage `tenant`'s keys.
fn may_manage(caller: &Credential, tenant: &str) -> Result<(), Status> {
    if caller.scope == ALL_TENANTS || caller.scope == tenant {
        return Ok(());
    }
    Err(Status::permission_denied(format!(
        "an admin of tenant {:?} manages that tenant's keys only, not {tenant:?}",
        caller.scope
    )))
}

/// A fresh secret: the prefix and 32 random bytes in hex.
fn new_secret() -> Result<String, Status> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Status::internal("no randomness available for a new key"))?;
    Ok(format!("{SECRET_PREFIX}{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// A key name: trimmed, bounded, no control characters.
fn name_arg(name: &str) -> Result<String, Status> {
    let name = name.trim();
    if name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "name: at most {MAX_NAME} characters without control characters"
        )));
    }
    Ok(name.to_string())
}

#[tonic::async_trait]
impl KeyService for Keys {
    #[tracing::instrument(skip_all)]
    async fn create_key(&self, request: Request<CreateKeyRequest>) -> Result<Response<CreateKeyResponse>, Status> {
        let caller = auth::caller(&request)?.credential.clone();
        let req = request.into_inner();
        // Empty: the caller's own scope (keys.proto), `*` for an admin of every tenant.
        let tenant = match req.tenant.trim() {
            "" => caller.scope.clone(),
            t => t.to_string(),
        };
        if tenant != ALL_TENANTS {
            check_name(&tenant).map_err(|m| Status::invalid_argument(format!("tenant: {m}")))?;
        }
        may_manage(&caller, &tenant)?;
        let role = Role::from_proto(req.role)
            .ok_or_else(|| Status::invalid_argument("role: must be ROLE_SUBMITTER, ROLE_OPERATOR or ROLE_ADMIN"))?;
        let name = name_arg(&req.name)?;
        let secret = new_secret()?;
        let at_ms = now_ms();
        let key = ApiKey {
            key_id: format!("key_{}", uuid::Uuid::now_v7().simple()),
            tenant,
            role: role.to_proto() as i32,
            name,
            created_by: caller.principal.clone(),
            created_at_ms: at_ms,
            revoked_at_ms: 0,
            revoked_by: String::new(),
        };
        let audit = AuditEntry {
            at_ms,
            actor: caller.principal.clone(),
            action: "apikey.create".into(),
            outcome: key.key_id.clone(),
            detail: format!("tenant={} role={} name={}", key.tenant, role.name(), key.name),
        };
        if !self.0.store.api_key_create(&key, &auth::secret_hash(&secret), &audit).await.map_err(store_error)? {
            return Err(Status::aborted("a key with this secret exists already; try again"));
        }
        tracing::info!(key_id = %key.key_id, tenant = %key.tenant, role = role.name(), by = %caller.principal,
            "API key created");
        Ok(Response::new(CreateKeyResponse { key: Some(key), secret }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_keys(&self, request: Request<ListKeysRequest>) -> Result<Response<ListKeysResponse>, Status> {
        let caller = auth::caller(&request)?.credential.clone();
        let req = request.into_inner();
        let only = match req.tenant.trim() {
            "" if caller.scope == ALL_TENANTS => None,
            "" => Some(caller.scope.clone()),
            t => {
                may_manage(&caller, t)?;
                Some(t.to_string())
            }
        };
        let keys = self.0.store.api_keys().await.map_err(store_error)?;
        let keys = keys
            .into_iter()
            .filter(|k| req.include_revoked || k.revoked_at_ms == 0)
            .filter(|k| only.as_ref().is_none_or(|t| &k.tenant == t))
            .collect();
        Ok(Response::new(ListKeysResponse { keys }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_key(&self, request: Request<RevokeKeyRequest>) -> Result<Response<RevokeKeyResponse>, Status> {
        let caller = auth::caller(&request)?.credential.clone();
        let req = request.into_inner();
        let id = req.key_id.trim();
        if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(Status::invalid_argument("key_id: is required, as CreateKey or ListKeys show it"));
        }
        if req.reason.len() > 1024 {
            return Err(Status::invalid_argument("reason: at most 1024 bytes"));
        }
        // Another tenant's key does not exist for a one-tenant admin.
        let found = self.0.store.api_key(id).await.map_err(store_error)?;
        let Some(mut key) = found.filter(|k| may_manage(&caller, &k.tenant).is_ok()) else {
            return Err(Status::not_found(format!("key {id} not found")));
        };
        if key.revoked_at_ms != 0 {
            return Ok(Response::new(RevokeKeyResponse { key: Some(key) }));
        }
        key.revoked_at_ms = now_ms();
        key.revoked_by = caller.principal.clone();
        let role = Role::from_proto(key.role).map_or("?", Role::name);
        let audit = AuditEntry {
            at_ms: key.revoked_at_ms,
            actor: caller.principal.clone(),
            action: "apikey.revoke".into(),
            outcome: key.key_id.clone(),
            detail: format!("tenant={} role={role} name={} reason={}", key.tenant, key.name, req.reason.trim()),
        };
        self.0.store.api_key_update(&key, &audit).await.map_err(store_error)?;
        tracing::info!(key_id = %key.key_id, tenant = %key.tenant, by = %caller.principal, "API key revoked");
        Ok(Response::new(RevokeKeyResponse { key: Some(key) }))
    }
}
