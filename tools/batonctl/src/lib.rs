//! The gRPC client side of `batonctl`, also used by `baton-loadtest`: dialing the gateway,
//! stamping the tenant header, naming status codes.

pub mod client;
