//! The gRPC connection: dialing the gateway, stamping the tenant header, naming status codes.

use std::time::Duration;

use anyhow::Context as _;
use baton_proto::v1::admin_service_client::AdminServiceClient;
use baton_proto::v1::run_service_client::RunServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// Request metadata header naming the tenant a call acts for.
pub const TENANT_HEADER: &str = "x-baton-tenant";

/// Largest response accepted: a run with many steps can exceed tonic's 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// RunService and AdminService clients over one channel; every call carries the tenant header.
/// Cloning is cheap: every clone shares the channel.
#[derive(Clone)]
pub struct Client {
    /// The generated RunService client.
    pub rpc: RunServiceClient<Channel>,
    /// The generated AdminService client (dead letters), on the same channel.
    pub admin: AdminServiceClient<Channel>,
    tenant: MetadataValue<tonic::metadata::Ascii>,
}

impl Client {
    /// Connects to `addr` (e.g. `http://127.0.0.1:50051`) for `tenant`.
    pub async fn connect(addr: &str, tenant: &str) -> anyhow::Result<Self> {
        let tenant = MetadataValue::try_from(tenant)
            .map_err(|_| anyhow::anyhow!("--tenant {tenant:?}: not a valid header value"))?;
        let endpoint = Endpoint::from_shared(addr.to_string())
            .with_context(|| format!("--addr {addr:?}: not a valid URI"))?
            .connect_timeout(Duration::from_secs(5));
        // Reported like any other gRPC failure, so scripts see one error shape.
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Status::unavailable(format!("cannot connect to {addr}: {}", chain(&e))))?;
        let rpc = RunServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let admin = AdminServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self { rpc, admin, tenant })
    }

    /// Wraps `message` in a request carrying the tenant header.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(TENANT_HEADER, self.tenant.clone());
        request
    }
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
