//! Metric names of the store, declared once, and their descriptions for `/metrics` (every
//! service registers them through `baton_service`).

use metrics::{describe_counter, Unit};

/// Writes that fewer replicas confirmed than `redis.min_replicas_acked` required in time.
pub const NOT_REPLICATED: &str = "baton_redis_writes_not_replicated_total";

/// Registers the descriptions with the installed recorder, and the series with zero values.
pub fn describe() {
    describe_counter!(
        NOT_REPLICATED,
        Unit::Count,
        "Writes fewer replicas confirmed than redis.min_replicas_acked required in time (counted as failed)."
    );
    metrics::counter!(NOT_REPLICATED).absolute(0);
}
