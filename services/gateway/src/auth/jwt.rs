//! JWT bearer tokens: the signature (HS256 with a shared secret, RS256 or ES256 with configured
//! public keys), `iss`, `aud`, `exp` (required) and `nbf` (when present), then the tenant and
//! role claims. Which keys, issuer, audience and claim names is `[auth]` config.

use anyhow::Context as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{ring_jwt, Credential, Role, ALL_TENANTS};

/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
const MIN_HS256_SECRET: usize = 32;

/// Checks tokens against the configured keys and claims.
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Vec<DecodingKey>,
    es256: Vec<DecodingKey>,
    issuer: String,
    audience: String,
    tenant_claim: String,
    role_claim: String,
    leeway_secs: u64,
}

impl JwtVerifier {
    /// The verifier `[auth]` describes, or None when it names no JWT key. `env` reads the
    /// variable holding the HS256 secret.
    pub fn from_config(
        auth: &baton_config::Auth,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Self>> {
        let hs256 = match auth.jwt_hs256_secret_env.as_str() {
            "" => None,
            var => {
                let secret = env(var).unwrap_or_default();
                if secret.len() < MIN_HS256_SECRET {
                    anyhow::bail!(
                        "auth.jwt_hs256_secret_env: ${var} must hold a secret of at least {MIN_HS256_SECRET} bytes"
                    );
                }
                Some(DecodingKey::from_secret(secret.as_bytes())?)
            }
        };
        let (mut rs256, mut es256) = (Vec::new(), Vec::new());
        for path in &auth.jwt_public_keys {
            let pem = std::fs::read(path).with_context(|| format!("auth.jwt_public_keys: {path}"))?;
            if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                es256.push(key);
            } else if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                rs256.push(key);
            } else {
                anyhow::bail!("auth.jwt_public_keys: {path} is not an RSA or EC P-256 public key in PEM");
            }
        }
        if hs256.is_none() && rs256.is_empty() && es256.is_empty() {
            return Ok(None);
        }
        if auth.jwt_issuer.is_empty() || auth.jwt_audience.is_empty() {
            anyhow::bail!("auth.jwt_issuer and auth.jwt_audience: both are required when JWTs are accepted");
        }
        if auth.jwt_tenant_claim.is_empty() || auth.jwt_role_claim.is_empty() {
            anyhow::bail!("auth.jwt_tenant_claim and auth.jwt_role_claim: must name claims");
        }
        ring_jwt::install();
        Ok(Some(Self {
            hs256,
            rs256,
            es256,
            issuer: auth.jwt_issuer.clone(),
            audience: auth.jwt_audience.clone(),
            tenant_claim: auth.jwt_tenant_claim.clone(),
            role_claim: auth.jwt_role_claim.clone(),
            leeway_secs: auth.jwt_leeway_secs,
        }))
    }

    /// The algorithms a token may be signed with, given the configured keys.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.hs256.is_some() {
            out.push("HS256");
        }
        if !self.rs256.is_empty() {
            out.push("RS256");
        }
        if !self.es256.is_empty() {
            out.push("ES256");
        }
        out
    }

    /// The credential a token carries, or why it is refused (a message for the caller).
    pub fn verify(&self, token: &str) -> Result<Credential, String> {
        let header = decode_header(token).map_err(|e| format!("malformed JWT: {e}"))?;
        let keys: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => self.hs256.iter().collect(),
            Algorithm::RS256 => self.rs256.iter().collect(),
            Algorithm::ES256 => self.es256.iter().collect(),
            _ => Vec::new(),
        };
        if keys.is_empty() {
            return Err(format!(
                "JWT algorithm {:?} is not accepted here (accepted: {})",
                header.alg,
                self.algorithms().join(", ")
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let mut refusal = String::from("JWT signature does not verify");
        for key in keys {
            match decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => return self.credential(&data.claims),
                // Another configured key of the same algorithm may have signed it.
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                Err(e) => {
                    refusal = refusal_of(e.kind());
                    break;
                }
            }
        }
        Err(refusal)
    }

    fn credential(&self, claims: &Map<String, Value>) -> Result<Credential, String> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let tenant = text(&self.tenant_claim)
            .ok_or_else(|| format!("JWT has no string claim {:?} naming its tenant", self.tenant_claim))?;
        if tenant != ALL_TENANTS {
            crate::tenant::check_name(tenant).map_err(|m| format!("JWT claim {:?}: {m}", self.tenant_claim))?;
        }
        let role = text(&self.role_claim)
            .ok_or_else(|| format!("JWT has no string claim {:?} naming its role", self.role_claim))?;
        let role = Role::parse(role).ok_or_else(|| {
            format!("JWT claim {:?}: {role:?} is not a role (submitter, operator, admin)", self.role_claim)
        })?;
        let subject: String = text("sub").unwrap_or("-").chars().filter(|c| !c.is_control()).take(128).collect();
        Ok(Credential { scope: tenant.to_string(), role, principal: format!("jwt:{subject}") })
    }
}

/// A clear reason for a token whose signature verified but whose claims did not.
fn refusal_of(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "JWT expired".into(),
        ErrorKind::ImmatureSignature => "JWT not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "JWT issuer (iss) is not the configured one".into(),
        ErrorKind::InvalidAudience => "JWT audience (aud) does not name this gateway".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("JWT has no valid {c:?} claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("JWT claim {c:?} has the wrong type"),
        ErrorKind::InvalidAlgorithm => "JWT algorithm does not match the key".into(),
        other => format!("malformed JWT: {other:?}"),
    }
}
