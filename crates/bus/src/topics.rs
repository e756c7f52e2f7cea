//! Topic names, all under one configurable prefix (default `baton`).

/// Names of the fleet's topics.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_string() }
    }

    /// `<prefix>.tasks.<lane>`: steps to execute on a lane.
    pub fn tasks(&self, lane: &str) -> String {
        format!("{}.tasks.{lane}", self.prefix)
    }

    /// `<prefix>.events`: every state transition of every run.
    pub fn events(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// `<prefix>.tasks.retry.<tier>`: failed steps waiting out a back-off of about `tier`.
    pub fn retry(&self, tier_label: &str) -> String {
        format!("{}.tasks.retry.{tier_label}", self.prefix)
    }

    /// `<prefix>.tasks.dlq`: steps that exhausted their retries.
    pub fn dlq(&self) -> String {
        format!("{}.tasks.dlq", self.prefix)
    }

    /// Consumer group of the schedulers.
    pub fn scheduler_group(&self) -> String {
        format!("{}-scheduler", self.prefix)
    }

    /// Consumer group of a lane's workers.
    pub fn worker_group(&self, lane: &str) -> String {
        format!("{}-worker-{lane}", self.prefix)
    }
}
