//! Generated code for the `baton.v1` protobuf package: the gRPC API, Kafka messages and checkpoint.
#![allow(missing_docs, clippy::all)]

/// `baton.v1`: runs, tasks, events and the RunService API.
pub mod v1 {
    tonic::include_proto!("baton.v1");

    /// Encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("baton_descriptor");
}

pub use prost::Message;
