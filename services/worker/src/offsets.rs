//! Offsets of task records whose claim is decided, per partition. Claims of different runs run
//! concurrently, so they finish out of order; a record's offset is stored only once every
//! earlier record of its partition is decided, so a record whose claim is still pending (Redis
//! unavailable, retrying) is never skipped by a later one's stored offset.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Records received and not yet covered by a stored offset.
#[derive(Default)]
pub struct Offsets {
    partitions: Mutex<HashMap<(String, i32), BTreeMap<i64, bool>>>,
}

impl Offsets {
    /// Notes a record whose claim starts now.
    pub fn received(&self, topic: &str, partition: i32, offset: i64) {
        let mut p = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        p.entry((topic.to_string(), partition)).or_default().insert(offset, false);
    }

    /// Marks a record decided. Returns the offset to store when the partition's decided prefix
    /// grew: the highest offset with every earlier received record decided.
    pub fn decided(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let mut p = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let records = p.get_mut(&(topic.to_string(), partition))?;
        records.insert(offset, true);
        let mut store = None;
        while let Some(entry) = records.first_entry() {
            if !*entry.get() {
                break;
            }
            store = Some(*entry.key());
            entry.remove();
        }
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stored_in_order() {
        let o = Offsets::default();
        for offset in [5, 6, 7] {
            o.received("t", 0, offset);
        }
        o.received("t", 1, 9);
        assert_eq!(o.decided("t", 0, 6), None, "5 is still pending");
        assert_eq!(o.decided("t", 1, 9), Some(9), "partitions are independent");
        assert_eq!(o.decided("t", 0, 5), Some(6));
        assert_eq!(o.decided("t", 0, 7), Some(7));
        assert_eq!(o.decided("t", 2, 1), None, "an unknown partition stores nothing");
    }
}
