//! Topic setup: create the fleet's topics if they are missing (idempotent, safe to race), each
//! with its retention (`kafka.task_retention_ms` for task and retry topics, `events_retention_ms`,
//! `dlq_retention_ms`). A topic that exists keeps the settings it has: an operator's change to
//! one is never undone.

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
    let (tasks, events, dlq) = (
        kafka.task_retention_ms.to_string(),
        kafka.events_retention_ms.to_string(),
        kafka.dlq_retention_ms.to_string(),
    );
    let mut wanted = vec![(topics.events(), &events)];
    wanted.extend(lanes.iter().map(|l| (topics.tasks(l), &tasks)));
    wanted.extend(retry_tiers_ms.iter().map(|t| (topics.retry(&baton_core::retry::tier_label(*t)), &tasks)));
    wanted.push((topics.dlq(), &dlq));
    let new: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, retention)| {
            NewTopic::new(name, kafka.partitions, TopicReplication::Fixed(kafka.replication_factor))
                .set("cleanup.policy", "delete")
                .set("retention.ms", retention)
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&new, &opts).await.map_err(|e| {
        let names: Vec<&str> = wanted.iter().map(|(name, _)| name.as_str()).collect();
        Error::Admin { topic: names.join(","), reason: e.to_string() }
    })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(Error::Admin { topic, reason: code.to_string() }),
        }
    }
    Ok(())
}
