//! Baton's Kafka layer (DESIGN §3): [`Topics`] names, the one [`Producer`] wrapper (which wakes
//! idle consumers of the topics it writes), [`consumer`] and [`assigned_consumer`] construction
//! with the lease-owns-the-work offset policy, [`IdlePause`] for consumers with nothing to do,
//! [`LagProbe`] for a lane group's consumer lag, and [`admin`] topic setup.

pub mod admin;
mod consumer;
mod delivery;
mod idle;
mod lag;
pub mod metric_definitions;
mod producer;
mod topics;

pub use consumer::{assign, assigned_consumer, consumer, traceparent_of, BatonConsumer};
pub use idle::IdlePause;
pub use lag::{LagProbe, PartitionLag};
pub use producer::{Pending, Producer, Route, Wake, LANE_HEADER, NOT_BEFORE_HEADER};
pub use rdkafka;
pub use topics::Topics;

/// Errors from the bus, with the topic they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building a client from config failed.
    #[error("kafka client config: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// A record could not be delivered.
    #[error("produce to {topic}: {source}")]
    Produce {
        /// Destination topic.
        topic: String,
        /// Broker or client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Offsets of a topic or group could not be read.
    #[error("offsets of {topic}: {source}")]
    Offsets {
        /// The topic.
        topic: String,
        /// Broker or client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Topic administration failed.
    #[error("topic {topic}: {reason}")]
    Admin {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
}

/// Result alias for the bus.
pub type Result<T> = std::result::Result<T, Error>;

/// Client settings shared by producers, consumers and the admin client.
pub(crate) fn base_config(kafka: &baton_config::Kafka, client_id: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &kafka.brokers)
        .set("client.id", client_id)
        .set("socket.keepalive.enable", "true")
        .set("log_level", "4");
    c
}
