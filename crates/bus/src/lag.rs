//! Consumer lag of a lane's worker group, read from the broker: per partition, the log end
//! offset (ListOffsets) minus the group's committed offset (OffsetFetch). A partition the
//! group never committed counts from the log start, as the group's consumers would.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{base_config, Error, Result, Topics};

/// Lag of one partition of a lane's task topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// Partition number.
    pub partition: i32,
    /// Records on the partition the group has not yet committed past.
    pub lag: i64,
}

/// Reads one lane group's lag. It never joins the group (no subscription): it only asks the
/// broker for offsets, so sampling does not cause rebalances.
pub struct LagProbe {
    consumer: BaseConsumer,
    topic: String,
}

impl LagProbe {
    /// A probe for the worker group of `lane`.
    pub fn new(kafka: &baton_config::Kafka, lane: &str) -> Result<Self> {
        let topics = Topics::new(&kafka.topic_prefix);
        let consumer: BaseConsumer = base_config(kafka, "baton-lag-probe")
            .set("group.id", topics.worker_group(lane))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(Error::Client)?;
        Ok(Self { consumer, topic: topics.tasks(lane) })
    }

    /// Lag per partition, in partition order. Blocking (broker round trips): call it from
    /// `spawn_blocking`.
    pub fn sample(&self, timeout: Duration) -> Result<Vec<PartitionLag>> {
        let fail = |source| Error::Offsets { topic: self.topic.clone(), source };
        let metadata = self.consumer.fetch_metadata(Some(&self.topic), timeout).map_err(fail)?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        let mut asked = TopicPartitionList::new();
        for p in &partitions {
            asked.add_partition(&self.topic, *p);
        }
        let committed = self.consumer.committed_offsets(asked, timeout).map_err(fail)?;
        let mut lags = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let (low, high) = self.consumer.fetch_watermarks(&self.topic, partition, timeout).map_err(fail)?;
            let done = match committed.find_partition(&self.topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => low,
            };
            lags.push(PartitionLag { partition, lag: lag(high, done) });
        }
        lags.sort_by_key(|l| l.partition);
        Ok(lags)
    }
}

/// Records between the group's position and the log end; never negative (a committed offset
/// can briefly lead a stale high watermark).
fn lag(log_end: i64, committed: i64) -> i64 {
    (log_end - committed).max(0)
}

#[cfg(test)]
mod tests {
    use super::lag;

    #[test]
    fn lag_is_the_distance_to_the_log_end_and_never_negative() {
        assert_eq!(lag(10, 4), 6);
        assert_eq!(lag(10, 10), 0);
        assert_eq!(lag(10, 12), 0);
    }
}
