//! The gRPC connection: dialing the gateway (plaintext or TLS), stamping the credential and
//! tenant headers, naming status codes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use baton_proto::v1::admin_service_client::AdminServiceClient;
use baton_proto::v1::key_service_client::KeyServiceClient;
use baton_proto::v1::run_service_client::RunServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// Request metadata header naming the tenant a call acts for.
pub const TENANT_HEADER: &str = "x-baton-tenant";

/// How to reach the gateway and who to be there.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// Tenant named in the `x-baton-tenant` header; None sends no header (the gateway then uses
    /// the credential's tenant, or `default` without authentication).
    pub tenant: Option<String>,
    /// API key or JWT, sent as `authorization: Bearer <it>`.
    pub api_key: Option<String>,
    /// PEM file of the CA that signed the gateway's certificate (TLS; implies `https://`).
    /// Without it an `https://` address is checked against the public web roots.
    pub tls_ca: Option<PathBuf>,
}

/// Largest response accepted: a run with many steps can exceed tonic's 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// RunService, AdminService and KeyService clients over one channel; every call carries the
/// credential and tenant headers. Cloning is cheap: every clone shares the channel.
#[derive(Clone)]
pub struct Client {
    /// The generated RunService client.
    pub rpc: RunServiceClient<Channel>,
    /// The generated AdminService client (dead letters), on the same channel.
    pub admin: AdminServiceClient<Channel>,
    /// The generated KeyService client (API keys), on the same channel.
    pub keys: KeyServiceClient<Channel>,
    tenant: Option<MetadataValue<Ascii>>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl Client {
    /// Connects to `addr` (e.g. `http://127.0.0.1:50051`) for `tenant`, without a credential.
    pub async fn connect(addr: &str, tenant: &str) -> anyhow::Result<Self> {
        Self::connect_with(addr, &Connect { tenant: Some(tenant.to_string()), ..Connect::default() }).await
    }

    /// Connects to `addr` (`http://` or `https://`) as `options` say.
    pub async fn connect_with(addr: &str, options: &Connect) -> anyhow::Result<Self> {
        let tenant = match &options.tenant {
            None => None,
            Some(t) => Some(
                MetadataValue::try_from(t.as_str())
                    .map_err(|_| anyhow::anyhow!("--tenant {t:?}: not a valid header value"))?,
            ),
        };
        let authorization = match &options.api_key {
            None => None,
            Some(key) => {
                let mut value = MetadataValue::try_from(format!("Bearer {}", key.trim()))
                    .map_err(|_| anyhow::anyhow!("--api-key: not a valid header value"))?;
                value.set_sensitive(true);
                if addr.starts_with("http://") && !is_loopback(addr) {
                    eprintln!("warning: sending a credential to {addr} without TLS; use https:// (--tls-ca)");
                }
                Some(value)
            }
        };
        let mut endpoint = Endpoint::from_shared(addr.to_string())
            .with_context(|| format!("--addr {addr:?}: not a valid URI"))?
            .connect_timeout(Duration::from_secs(5));
        if let Some(tls) = tls_config(addr, options)? {
            endpoint = endpoint.tls_config(tls).context("TLS settings")?;
        }
        // Reported like any other gRPC failure, so scripts see one error shape.
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Status::unavailable(format!("cannot connect to {addr}: {}", chain(&e))))?;
        let rpc = RunServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let admin = AdminServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let keys = KeyServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self { rpc, admin, keys, tenant, authorization })
    }

    /// Wraps `message` in a request carrying the credential and tenant headers.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(tenant) = &self.tenant {
            request.metadata_mut().insert(TENANT_HEADER, tenant.clone());
        }
        if let Some(authorization) = &self.authorization {
            request.metadata_mut().insert("authorization", authorization.clone());
        }
        request
    }
}

/// The TLS settings `addr` and `options` call for: `https://` or a CA file mean TLS.
fn tls_config(addr: &str, options: &Connect) -> anyhow::Result<Option<ClientTlsConfig>> {
    let https = addr.starts_with("https://");
    match &options.tls_ca {
        Some(path) => {
            anyhow::ensure!(https, "--tls-ca needs an https:// address (--addr {addr})");
            let pem = std::fs::read(path).with_context(|| format!("--tls-ca {}", path.display()))?;
            Ok(Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))))
        }
        None if https => Ok(Some(ClientTlsConfig::new().with_webpki_roots())),
        None => Ok(None),
    }
}

/// Whether `addr` names this machine (a credential sent there in plaintext stays on it).
fn is_loopback(addr: &str) -> bool {
    let host = addr.split("://").nth(1).unwrap_or(addr).split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// An error and its sources, joined with `: ` (a source that repeats its parent is skipped).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}

/// The canonical gRPC name of a status code, e.g. `NOT_FOUND`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("http://127.0.0.1:50051"));
        assert!(is_loopback("http://localhost:50051/"));
        assert!(is_loopback("http://[::1]:50051"));
        assert!(!is_loopback("http://gateway.prod:50051"));
        assert!(!is_loopback("http://10.0.0.7:50051"));
    }

    #[test]
    fn tls_follows_the_scheme_and_the_ca() {
        let plain = Connect::default();
        assert!(tls_config("http://127.0.0.1:1", &plain).unwrap().is_none());
        assert!(tls_config("https://gateway:1", &plain).unwrap().is_some());
        let ca = Connect { tls_ca: Some("/nonexistent/ca.pem".into()), ..Connect::default() };
        let e = tls_config("http://gateway:1", &ca).unwrap_err().to_string();
        assert!(e.contains("needs an https:// address"), "{e}");
        assert!(tls_config("https://gateway:1", &ca).is_err(), "a missing CA file is an error");
    }
}
