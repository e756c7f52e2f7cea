//! The caller's tenant. With authentication on it is the credential's, as the auth layer
//! resolved it ([`crate::auth`]); with `auth.mode = "none"` it is the `x-baton-tenant` header
//! (default `default`).

use tonic::{Request, Status};

use crate::auth::Identity;

/// Header naming the tenant a call acts for.
pub const TENANT_HEADER: &str = "x-baton-tenant";

/// The tenant of a request, validated: 1–64 of `[A-Za-z0-9_-]`. A call that did not pass the
/// auth layer is refused, never served for the tenant its header names.
pub fn of<T>(request: &Request<T>) -> Result<String, Status> {
    match request.extensions().get::<Identity>() {
        Some(Identity::Caller(caller)) => Ok(caller.tenant.clone()),
        Some(Identity::Anonymous) => from_header(request),
        Some(Identity::Open) | None => Err(Status::internal("the call did not pass the auth layer")),
    }
}

/// The tenant the `x-baton-tenant` header names (default `default`).
fn from_header<T>(request: &Request<T>) -> Result<String, Status> {
    let Some(value) = request.metadata().get(TENANT_HEADER) else {
        return Ok("default".to_string());
    };
    let tenant = value.to_str().map_err(|_| Status::invalid_argument(format!("{TENANT_HEADER}: not ASCII")))?;
    check_name(tenant).map_err(|m| Status::invalid_argument(format!("{TENANT_HEADER}: {m}")))?;
    Ok(tenant.to_string())
}

/// Checks a tenant name: 1–64 of `[A-Za-z0-9_-]`.
pub fn check_name(tenant: &str) -> Result<(), String> {
    if tenant.is_empty()
        || tenant.len() > 64
        || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("{tenant:?} must be 1-64 of [A-Za-z0-9_-]"));
    }
    Ok(())
}
