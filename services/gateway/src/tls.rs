//! TLS for the gRPC listener: `gateway.tls_cert` and `gateway.tls_key` (PEM files), served with
//! rustls on `ring`. Both set: TLS only; neither: plaintext; one alone: the gateway refuses to
//! start.

use anyhow::Context as _;
use tonic::transport::{Identity, ServerTlsConfig};

/// The listener's TLS config, or None for plaintext.
pub fn server_config(gateway: &baton_config::Gateway) -> anyhow::Result<Option<ServerTlsConfig>> {
    match (gateway.tls_cert.as_str(), gateway.tls_key.as_str()) {
        ("", "") => Ok(None),
        ("", _) | (_, "") => {
            anyhow::bail!("gateway.tls_cert and gateway.tls_key: set both (TLS) or neither (plaintext)")
        }
        (cert, key) => {
            let cert_pem = std::fs::read(cert).with_context(|| format!("gateway.tls_cert: {cert}"))?;
            let key_pem = std::fs::read(key).with_context(|| format!("gateway.tls_key: {key}"))?;
            let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
            // Parses the PEMs now, so a bad pair stops the gateway before it starts anything.
            tonic::transport::Server::builder()
                .tls_config(tls.clone())
                .map_err(|e| anyhow::anyhow!("gateway.tls_cert {cert} / gateway.tls_key {key}: {e}"))?;
            Ok(Some(tls))
        }
    }
}
