//! The shared gRPC target: one tonic `Channel` to the gateway, the tenant header, and which
//! failures are worth retrying.

use std::time::Duration;

use anyhow::Context as _;
use baton_proto::v1::run_service_client::RunServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// Request metadata header naming the tenant a call acts for.
const TENANT_HEADER: &str = "x-baton-tenant";

/// A RunService client for one tenant. Cloning is cheap: every clone shares the same channel.
#[derive(Clone)]
pub struct Target {
    /// The generated client over the shared channel.
    pub rpc: RunServiceClient<Channel>,
    tenant: MetadataValue<Ascii>,
}

impl Target {
    /// Connects once to `addr`; every request made through this target acts for `tenant`.
    pub async fn connect(addr: &str, tenant: &str) -> anyhow::Result<Self> {
        let tenant = MetadataValue::try_from(tenant)
            .map_err(|_| anyhow::anyhow!("--tenant {tenant:?}: not a valid header value"))?;
        let channel = Endpoint::from_shared(addr.to_string())
            .with_context(|| format!("--addr {addr:?}: not a valid URI"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        Ok(Self { rpc: RunServiceClient::new(channel), tenant })
    }

    /// Wraps `message` in a request carrying the tenant header.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(TENANT_HEADER, self.tenant.clone());
        request
    }
}

/// True for failures a later attempt may not see: the gateway is restarting, shedding load,
/// or out of watcher slots.
pub fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::ResourceExhausted | Code::Aborted)
}

/// Canonical gRPC name of a status code (`UNAVAILABLE`), for failure labels in the report.
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
