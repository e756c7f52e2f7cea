//! Which gRPC failures the load generator retries. The connection itself is batonctl's
//! [`Client`](batonctl::client::Client).

use tonic::{Code, Status};

/// True for failures a later attempt may not see: the gateway is restarting, shedding load,
/// or out of watcher slots.
pub fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::ResourceExhausted | Code::Aborted)
}
