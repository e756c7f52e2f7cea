//! Topic setup: create the fleet's topics if they are missing (idempotent, safe to race).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{base_config, Error, Result, Topics};

/// Creates, if missing: `<prefix>.events`, `<prefix>.tasks.<lane>` for every lane,
/// `<prefix>.tasks.retry.<tier>` for every retry tier, and `<prefix>.tasks.dlq`.
pub async fn ensure_topics(kafka: &baton_config::Kafka, lanes: &[String], retry_tiers_ms: &[u64]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(kafka, "baton-admin").create().map_err(Error::Client)?;
    let topics = Topics::new(&kafka.topic_prefix);
    let mut names = vec![topics.events()];
    names.extend(lanes.iter().map(|l| topics.tasks(l)));
    names.extend(retry_tiers_ms.iter().map(|t| topics.retry(&baton_core::retry::tier_label(*t))));
    names.push(topics.dlq());
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, kafka.partitions, TopicReplication::Fixed(kafka.replication_factor)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| Error::Admin { topic: names.join(","), reason: e.to_string() })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(Error::Admin { topic, reason: code.to_string() }),
        }
    }
    Ok(())
}
