//! Who is calling, and what they may do (docs/security.md). One tower layer ([`AuthLayer`])
//! sees every call before its handler: with `auth.mode = "required"` it checks the bearer
//! credential — an API key (stored hashed in Redis), the bootstrap admin key, or a JWT — then
//! the role the method needs, then the tenant the call acts for, and puts the result in the
//! request's extensions as an [`Identity`]; [`crate::tenant::of`] reads the tenant from there.
//! Health and reflection stay open. With `auth.mode = "none"` the layer lets everything through
//! as [`Identity::Anonymous`] and the tenant comes from the `x-baton-tenant` header.

mod jwt;
mod layer;
mod ring_jwt;

use std::sync::Arc;

use baton_config::AuthMode;
use baton_proto::v1::Role as ProtoRole;
use sha2::{Digest as _, Sha256};
use tonic::{Request, Status};

use crate::tenant::{check_name, TENANT_HEADER};

pub use layer::AuthLayer;

/// The scope of a credential that acts for every tenant.
pub const ALL_TENANTS: &str = "*";

/// Shortest bootstrap admin key accepted.
const MIN_BOOTSTRAP_KEY: usize = 32;

/// What a credential may do; each role may do all that the roles before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// RunService: submit, get, list, watch, cancel.
    Submitter,
    /// Also approvals and reconciliation; with scope `*`, AdminService.
    Operator,
    /// Also KeyService.
    Admin,
}

impl Role {
    /// `submitter`, `operator` or `admin`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Submitter => "submitter",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// A role by name (any case).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "submitter" => Some(Role::Submitter),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The role of the API's enum; None for UNSPECIFIED or an unknown value.
    pub fn from_proto(value: i32) -> Option<Self> {
        match ProtoRole::try_from(value).ok()? {
            ProtoRole::Submitter => Some(Role::Submitter),
            ProtoRole::Operator => Some(Role::Operator),
            ProtoRole::Admin => Some(Role::Admin),
            ProtoRole::Unspecified => None,
        }
    }

    /// The API's enum value.
    pub fn to_proto(self) -> ProtoRole {
        match self {
            Role::Submitter => ProtoRole::Submitter,
            Role::Operator => ProtoRole::Operator,
            Role::Admin => ProtoRole::Admin,
        }
    }
}

/// A verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The one tenant it acts for, or [`ALL_TENANTS`].
    pub scope: String,
    /// What it may do.
    pub role: Role,
    /// Who, for logs and the audit trail: `key:<id>`, `jwt:<sub>` or `bootstrap`.
    pub principal: String,
}

/// An authenticated call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant this call acts for.
    pub tenant: String,
    /// The credential it was made with.
    pub credential: Credential,
}

/// What the auth layer attaches to every call it lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `auth.mode = "none"`: nobody was asked who they are.
    Anonymous,
    /// Authentication is on and the method is open to anyone (health, reflection): no tenant.
    Open,
    /// A verified credential and the tenant the call acts for.
    Caller(Caller),
}

/// The authenticated caller of a request; FAILED_PRECONDITION when auth is off.
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    match request.extensions().get::<Identity>() {
        Some(Identity::Caller(c)) => Ok(c),
        Some(Identity::Anonymous) => {
            Err(Status::failed_precondition("this RPC needs authentication: set auth.mode = \"required\""))
        }
        Some(Identity::Open) | None => Err(Status::internal("the call did not pass the auth layer")),
    }
}

/// What calling one method takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health checks and reflection.
    Open,
    /// At least `role`; with `fleet`, a credential for every tenant.
    Role {
        /// The lowest role allowed.
        role: Role,
        /// Only a credential with scope `*`.
        fleet: bool,
    },
}

/// What the gRPC method at `path` (`/package.Service/Method`) takes. Methods of a service this
/// table does not know take the most: `admin` for every tenant.
pub fn need(path: &str) -> Need {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    let role = |role, fleet| Need::Role { role, fleet };
    match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => Need::Open,
        "baton.v1.RunService" => match method {
            "ResolveApproval" | "ListApprovals" | "ReconcileRun" => role(Role::Operator, false),
            _ => role(Role::Submitter, false),
        },
        "baton.v1.AdminService" => role(Role::Operator, true),
        "baton.v1.KeyService" => role(Role::Admin, false),
        _ => role(Role::Admin, true),
    }
}

/// Checks that `credential` may call the method at `path`: PERMISSION_DENIED naming what it
/// takes otherwise.
pub fn permit(path: &str, credential: &Credential) -> Result<(), Status> {
    let Need::Role { role, fleet } = need(path) else { return Ok(()) };
    if credential.role >= role && (!fleet || credential.scope == ALL_TENANTS) {
        return Ok(());
    }
    let roles: Vec<&str> =
        [Role::Submitter, Role::Operator, Role::Admin].into_iter().filter(|r| *r >= role).map(Role::name).collect();
    let scope = if fleet { " for every tenant (*)" } else { "" };
    Err(Status::permission_denied(format!(
        "{} needs the {} role{scope}; this credential is {} for tenant {:?}",
        path.trim_start_matches('/'),
        roles.join(" or "),
        credential.role.name(),
        credential.scope,
    )))
}

/// The tenant a call acts for: the credential's; a credential for every tenant names it in the
/// `x-baton-tenant` header (default `default`). A header that disagrees with a one-tenant
/// credential is INVALID_ARGUMENT: it never selects another tenant.
pub fn resolve_tenant(scope: &str, header: Option<&str>) -> Result<String, Status> {
    if scope == ALL_TENANTS {
        let tenant = header.unwrap_or("default");
        check_name(tenant).map_err(|m| Status::invalid_argument(format!("{TENANT_HEADER}: {m}")))?;
        return Ok(tenant.to_string());
    }
    match header {
        Some(named) if named != scope => Err(Status::invalid_argument(format!(
            "{TENANT_HEADER}: {named:?} is not the tenant of this credential ({scope:?}); leave the header out"
        ))),
        _ => Ok(scope.to_string()),
    }
}

/// The SHA-256 of a secret, lowercase hex: how API keys are stored and found.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks credentials: API keys in Redis, the bootstrap admin key, JWTs.
pub struct Authenticator {
    mode: AuthMode,
    /// SHA-256 of the bootstrap admin key, if one is configured.
    bootstrap: Option<String>,
    jwt: Option<jwt::JwtVerifier>,
    store: baton_store::Store,
}

impl Authenticator {
    /// The authenticator `[auth]` describes; `env` reads the variables it names. Warns loudly
    /// when the gateway is unauthenticated or a bootstrap key is in force.
    pub fn from_config(
        auth: &baton_config::Auth,
        env: &dyn Fn(&str) -> Option<String>,
        store: baton_store::Store,
    ) -> anyhow::Result<Arc<Self>> {
        if auth.mode == AuthMode::None {
            tracing::warn!(
                "UNAUTHENTICATED GATEWAY: auth.mode = \"none\" — any caller acts for any tenant it names in \
                 {TENANT_HEADER}. Set auth.mode = \"required\" anywhere but a laptop or a test (docs/security.md)"
            );
            return Ok(Arc::new(Self { mode: auth.mode, bootstrap: None, jwt: None, store }));
        }
        let bootstrap = match auth.bootstrap_admin_key_env.as_str() {
            "" => None,
            var => {
                let key = env(var).unwrap_or_default();
                if key.len() < MIN_BOOTSTRAP_KEY || key.contains('.') {
                    anyhow::bail!(
                        "auth.bootstrap_admin_key_env: ${var} must hold a key of at least {MIN_BOOTSTRAP_KEY} \
                         characters without dots"
                    );
                }
                tracing::warn!(
                    env = var,
                    "a bootstrap admin key (every tenant) is in force: create admin keys with it, then remove it"
                );
                Some(secret_hash(&key))
            }
        };
        let jwt = jwt::JwtVerifier::from_config(auth, env)?;
        tracing::info!(
            bootstrap = bootstrap.is_some(),
            jwt_algorithms = ?jwt.as_ref().map(|j| j.algorithms()).unwrap_or_default(),
            "authentication required on every RPC but health and reflection"
        );
        Ok(Arc::new(Self { mode: auth.mode, bootstrap, jwt, store }))
    }

    /// Lets a call to `path` through, with the identity its handler sees, or refuses it:
    /// UNAUTHENTICATED (no or bad credential), PERMISSION_DENIED (role or scope),
    /// INVALID_ARGUMENT (a tenant header that disagrees), UNAVAILABLE (Redis).
    pub async fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Identity, Status> {
        if self.mode == AuthMode::None {
            return Ok(Identity::Anonymous);
        }
        if need(path) == Need::Open {
            return Ok(Identity::Open);
        }
        let credential = self.authenticate(headers).await?;
        permit(path, &credential)?;
        let header = match headers.get(TENANT_HEADER) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| Status::invalid_argument(format!("{TENANT_HEADER}: not ASCII")))?),
        };
        let tenant = resolve_tenant(&credential.scope, header)?;
        Ok(Identity::Caller(Caller { tenant, credential }))
    }

    /// The credential in the `authorization: Bearer` header.
    async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Credential, Status> {
        let token = bearer(headers).map_err(Status::unauthenticated)?;
        if token.split('.').count() == 3 {
            let Some(jwt) = &self.jwt else {
                return Err(Status::unauthenticated("JWTs are not accepted here (no auth.jwt_* key is configured)"));
            };
            return jwt.verify(token).map_err(|m| {
                tracing::debug!(reason = %m, "JWT refused");
                Status::unauthenticated(m)
            });
        }
        let hash = secret_hash(token);
        if self.bootstrap.as_deref() == Some(hash.as_str()) {
            return Ok(Credential { scope: ALL_TENANTS.into(), role: Role::Admin, principal: "bootstrap".into() });
        }
        let key = self
            .store
            .api_key_by_secret_hash(&hash)
            .await
            .map_err(|e| Status::unavailable(format!("cannot check the API key: state store unavailable: {e}")))?;
        match key {
            Some(k) if k.revoked_at_ms == 0 => Ok(Credential {
                scope: k.tenant,
                role: Role::from_proto(k.role)
                    .ok_or_else(|| Status::internal(format!("key {} has no role", k.key_id)))?,
                principal: format!("key:{}", k.key_id),
            }),
            Some(k) => Err(Status::unauthenticated(format!("API key {} was revoked", k.key_id))),
            None => Err(Status::unauthenticated("unknown API key")),
        }
    }
}

/// The token of an `authorization: Bearer <token>` header, or why there is none.
pub fn bearer(headers: &http::HeaderMap) -> Result<&str, String> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err("no credential: send `authorization: Bearer <API key or JWT>`".into());
    };
    let value = value.to_str().map_err(|_| "authorization: not ASCII".to_string())?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err("authorization: expected `Bearer <API key or JWT>`".into());
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
