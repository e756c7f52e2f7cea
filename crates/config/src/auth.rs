//! `[auth]`: who may call the gateway (API keys, JWTs, roles; docs/security.md).

use serde::{Deserialize, Serialize};

/// How the gateway authenticates callers.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No credentials: a caller acts for the tenant its `x-baton-tenant` header names. For a
    /// laptop or a test stack only; the gateway warns loudly at start.
    #[default]
    None,
    /// Every RPC but health and reflection needs an API key or a JWT; the tenant and the role
    /// come from the credential.
    Required,
}

/// `[auth]`: API keys (in Redis, managed through `KeyService`) and JWT bearer tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// `none` or `required`.
    pub mode: AuthMode,
    /// Environment variable whose value (at least 32 characters) is accepted as an `admin` key
    /// for every tenant: how the first real admin key is created. Empty: none.
    pub bootstrap_admin_key_env: String,
    /// Environment variable holding the HS256 secret of accepted JWTs (at least 32 bytes).
    /// Empty: no HS256.
    pub jwt_hs256_secret_env: String,
    /// PEM files of the RSA (RS256) and EC P-256 (ES256) public keys of accepted JWTs.
    pub jwt_public_keys: Vec<String>,
    /// The `iss` a JWT must carry (required when JWTs are accepted).
    pub jwt_issuer: String,
    /// An `aud` a JWT must carry (required when JWTs are accepted).
    pub jwt_audience: String,
    /// The claim naming the tenant a JWT acts for.
    pub jwt_tenant_claim: String,
    /// The claim naming its role: `submitter`, `operator` or `admin`.
    pub jwt_role_claim: String,
    /// Clock skew allowed when checking `exp` and `nbf`, in seconds.
    pub jwt_leeway_secs: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            bootstrap_admin_key_env: String::new(),
            jwt_hs256_secret_env: String::new(),
            jwt_public_keys: Vec::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_tenant_claim: "tenant".into(),
            jwt_role_claim: "role".into(),
            jwt_leeway_secs: 30,
        }
    }
}
