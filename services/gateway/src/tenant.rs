//! The caller's tenant, from the `x-baton-tenant` header (default `default`).
//! Authentication that maps credentials to tenants plugs in here.

use tonic::{Request, Status};

/// Header naming the tenant a call acts for.
pub const TENANT_HEADER: &str = "x-baton-tenant";

/// The tenant of a request, validated: 1–64 of `[A-Za-z0-9_-]`.
pub fn of<T>(request: &Request<T>) -> Result<String, Status> {
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
