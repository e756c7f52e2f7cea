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

    /// Consumer group of a lane's workers.
    pub fn worker_group(&self, lane: &str) -> String {
        format!("{}-worker-{lane}", self.prefix)
    }
}
