//! The fleet's topics are created with their retention, so the broker's disk stays bounded:
//! task and retry topics short, events as configured, the dead-letter topic long. Read back
//! from a real broker (tansu) with DescribeConfigs.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use baton_bus::rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use baton_bus::rdkafka::client::DefaultClientContext;
use baton_bus::rdkafka::ClientConfig;
use baton_testkit::{Broker, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_their_retention() {
    let dir = TempDir::new("topics");
    let broker = Broker::start(&dir).await;
    let kafka = baton_config::Kafka {
        brokers: broker.bootstrap(),
        task_retention_ms: 3_600_000,
        events_retention_ms: 86_400_000,
        dlq_retention_ms: 2_592_000_000,
        ..Default::default()
    };
    let lanes = vec!["main".to_string()];
    baton_bus::admin::ensure_topics(&kafka, &lanes, &[1_000]).await.unwrap();
    // Again: a topic that exists is left as it is.
    baton_bus::admin::ensure_topics(&kafka, &lanes, &[1_000]).await.unwrap();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().unwrap();
    let expected = [
        ("baton.tasks.main", "3600000"),
        ("baton.tasks.retry.1s", "3600000"),
        ("baton.events", "86400000"),
        ("baton.tasks.dlq", "2592000000"),
    ];
    let specifiers: Vec<_> = expected.iter().map(|(topic, _)| ResourceSpecifier::Topic(topic)).collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = admin.describe_configs(&specifiers, &opts).await.unwrap();
    for ((topic, retention), resource) in expected.iter().zip(described) {
        let resource = resource.unwrap_or_else(|e| panic!("{topic}: {e:?}"));
        let value = |key: &str| resource.get(key).and_then(|entry| entry.value.clone());
        assert_eq!(value("retention.ms").as_deref(), Some(*retention), "{topic}: {:?}", resource.entries);
        assert_eq!(value("cleanup.policy").as_deref(), Some("delete"), "{topic}");
    }
}
