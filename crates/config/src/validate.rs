//! `Config::validate`: ranges and cross-field rules, each error naming its key.

use std::net::SocketAddr;

use crate::{Config, Error};

fn invalid(key: &str, reason: impl Into<String>) -> Error {
    Error::Invalid { key: key.to_string(), reason: reason.into() }
}

fn addr(key: &str, value: &str) -> Result<(), Error> {
    value
        .parse::<SocketAddr>()
        .map(|_| ())
        .map_err(|e| invalid(key, format!("{value:?} is not a host:port socket address ({e})")))
}

fn http_url(key: &str, value: &str) -> Result<(), Error> {
    if value.starts_with("http://") || value.starts_with("https://") {
        return Ok(());
    }
    Err(invalid(key, format!("{value:?} must be an http:// or https:// URL")))
}

fn endpoint_name(key: &str, name: &str) -> Result<(), Error> {
    if !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Ok(());
    }
    Err(invalid(key, "the name must be 1..=64 characters of [A-Za-z0-9._-]"))
}

fn positive(key: &str, value: u64) -> Result<(), Error> {
    if value == 0 {
        return Err(invalid(key, "must be greater than 0"));
    }
    Ok(())
}

fn history_max_steps(key: &str, value: u32) -> Result<(), Error> {
    if value == 0 || value > crate::MAX_HISTORY_STEPS {
        let why = "(a claim reads that many step records of the run)";
        return Err(invalid(key, format!("{value} must be between 1 and {} {why}", crate::MAX_HISTORY_STEPS)));
    }
    Ok(())
}

impl Config {
    /// Checks every value that a type alone cannot; the first problem is returned.
    pub fn validate(&self) -> Result<(), Error> {
        let k = &self.kafka;
        if k.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must list at least one host:port"));
        }
        if k.topic_prefix.is_empty() || !k.topic_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(invalid(
                "kafka.topic_prefix",
                format!("{:?} must be non-empty [A-Za-z0-9._-]", k.topic_prefix),
            ));
        }
        if k.partitions < 1 {
            return Err(invalid("kafka.partitions", "must be at least 1"));
        }
        if k.replication_factor < 1 {
            return Err(invalid("kafka.replication_factor", "must be at least 1"));
        }
        if !["range", "roundrobin", "cooperative-sticky"].contains(&k.assignment_strategy.as_str()) {
            return Err(invalid(
                "kafka.assignment_strategy",
                format!("{:?} is not one of range, roundrobin, cooperative-sticky", k.assignment_strategy),
            ));
        }
        if k.session_timeout_ms < 1_000 {
            return Err(invalid("kafka.session_timeout_ms", "must be at least 1000"));
        }
        if k.max_poll_interval_ms < k.session_timeout_ms {
            return Err(invalid("kafka.max_poll_interval_ms", "must be at least kafka.session_timeout_ms"));
        }
        positive("kafka.idle_pause_ms", k.idle_pause_ms)?;
        positive("kafka.events_retention_ms", k.events_retention_ms)?;
        positive("kafka.dlq_retention_ms", k.dlq_retention_ms)?;
        // A retry record waits in its tier topic until due: it must not expire first.
        let longest_tier = self.scheduler.retry_tiers_ms.iter().copied().max().unwrap_or(0);
        if k.task_retention_ms <= longest_tier.saturating_mul(2) {
            return Err(invalid(
                "kafka.task_retention_ms",
                format!("must be more than twice the longest retry tier ({longest_tier} ms)"),
            ));
        }
        if !self.redis.url.starts_with("redis://") && !self.redis.url.starts_with("rediss://") {
            return Err(invalid("redis.url", format!("{:?} must start with redis:// or rediss://", self.redis.url)));
        }
        positive("redis.pool_size", self.redis.pool_size as u64)?;
        for seed in &self.redis.cluster_seeds {
            if !self.redis.cluster {
                return Err(invalid("redis.cluster_seeds", "are only used with redis.cluster = true".to_string()));
            }
            if !seed.starts_with("redis://") && !seed.starts_with("rediss://") {
                return Err(invalid("redis.cluster_seeds", format!("{seed:?} must start with redis:// or rediss://")));
            }
        }
        if self.redis.min_replicas_acked > 0 {
            positive("redis.replica_ack_timeout_ms", self.redis.replica_ack_timeout_ms)?;
        }

        let r = &self.runs;
        if r.lanes.is_empty() {
            return Err(invalid("runs.lanes", "must name at least one lane"));
        }
        positive("runs.max_plan_steps", r.max_plan_steps.into())?;
        positive("runs.default_max_steps", r.default_max_steps.into())?;
        if r.default_max_steps > r.ceiling_max_steps {
            return Err(invalid("runs.default_max_steps", "must not exceed runs.ceiling_max_steps"));
        }
        positive("runs.default_wall_clock_ms", r.default_wall_clock_ms)?;
        if r.default_wall_clock_ms > r.ceiling_wall_clock_ms {
            return Err(invalid("runs.default_wall_clock_ms", "must not exceed runs.ceiling_wall_clock_ms"));
        }
        positive("runs.default_max_attempts", r.default_max_attempts.into())?;
        if r.default_max_attempts > r.ceiling_max_attempts {
            return Err(invalid("runs.default_max_attempts", "must not exceed runs.ceiling_max_attempts"));
        }
        positive("runs.dispatch_grace_ms", r.dispatch_grace_ms)?;
        positive("runs.idempotency_ttl_secs", r.idempotency_ttl_secs)?;
        positive("runs.retention_secs", r.retention_secs)?;
        if r.idempotency_ttl_secs > r.retention_secs {
            // A key outliving its run would let a retry recreate an expired run under the same key.
            return Err(invalid(
                "runs.idempotency_ttl_secs",
                format!(
                    "{} must not exceed runs.retention_secs ({}): a retry after the run expired would create it again",
                    r.idempotency_ttl_secs, r.retention_secs
                ),
            ));
        }
        for name in self.lanes.keys() {
            if !r.lanes.contains(name) {
                return Err(invalid(&format!("lanes.{name}"), format!("{name:?} is not in runs.lanes {:?}", r.lanes)));
            }
        }

        let g = &self.gateway;
        addr("gateway.listen", &g.listen)?;
        addr("gateway.ops_listen", &g.ops_listen)?;
        if g.max_request_bytes < 1024 {
            return Err(invalid("gateway.max_request_bytes", "must be at least 1024"));
        }
        positive("gateway.max_watchers", g.max_watchers as u64)?;
        positive("gateway.max_page_size", g.max_page_size.into())?;

        let w = &self.worker;
        if !r.lanes.contains(&w.lane) {
            return Err(invalid("worker.lane", format!("{:?} is not in runs.lanes {:?}", w.lane, r.lanes)));
        }
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if w.name.len() > 253 || !w.name.chars().all(name_ok) {
            return Err(invalid(
                "worker.name",
                "must be at most 253 letters, digits, '-', '_' or '.' (a pod name fits)",
            ));
        }
        addr("worker.ops_listen", &w.ops_listen)?;
        positive("worker.concurrency", w.concurrency as u64)?;
        positive("worker.lease_ttl_ms", w.lease_ttl_ms)?;
        positive("worker.heartbeat_ms", w.heartbeat_ms)?;
        if w.heartbeat_ms.saturating_mul(2) > w.lease_ttl_ms {
            return Err(invalid(
                "worker.heartbeat_ms",
                format!("{} must be at most half of worker.lease_ttl_ms ({})", w.heartbeat_ms, w.lease_ttl_ms),
            ));
        }
        if w.liveness_ttl_ms < 300 || w.liveness_ttl_ms > w.lease_ttl_ms {
            return Err(invalid(
                "worker.liveness_ttl_ms",
                format!("{} must be between 300 and worker.lease_ttl_ms ({})", w.liveness_ttl_ms, w.lease_ttl_ms),
            ));
        }
        positive("worker.step_timeout_ms", w.step_timeout_ms)?;
        positive("worker.max_output_bytes", w.max_output_bytes as u64)?;
        positive("worker.slice_max_steps", w.slice_max_steps.into())?;
        positive("worker.slice_max_ms", w.slice_max_ms)?;

        addr("reaper.ops_listen", &self.reaper.ops_listen)?;
        positive("reaper.max_interval_ms", self.reaper.max_interval_ms)?;
        positive("reaper.batch", self.reaper.batch as u64)?;
        addr("scheduler.ops_listen", &self.scheduler.ops_listen)?;
        let tiers = &self.scheduler.retry_tiers_ms;
        if tiers.is_empty() || tiers.contains(&0) || tiers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid(
                "scheduler.retry_tiers_ms",
                format!("{tiers:?} must be non-empty, positive and strictly ascending"),
            ));
        }
        positive("scheduler.timer_max_interval_ms", self.scheduler.timer_max_interval_ms)?;
        positive("scheduler.timer_batch", self.scheduler.timer_batch as u64)?;
        for (name, m) in &self.models {
            let key = |k: &str| format!("models.{name}.{k}");
            endpoint_name(&format!("models.{name}"), name)?;
            http_url(&key("base_url"), &m.base_url)?;
            if m.model.trim().is_empty() {
                return Err(invalid(&key("model"), "must name the model to request"));
            }
            positive(&key("timeout_ms"), m.timeout_ms)?;
            positive(&key("max_output_tokens"), m.max_output_tokens.into())?;
            positive(&key("max_response_bytes"), m.max_response_bytes as u64)?;
            for (k, price) in
                [("input_price_per_mtok", m.input_price_per_mtok), ("output_price_per_mtok", m.output_price_per_mtok)]
            {
                if !price.is_finite() || price < 0.0 {
                    return Err(invalid(&key(k), format!("{price} must be a non-negative number")));
                }
            }
            history_max_steps(&key("history_max_steps"), m.history_max_steps)?;
            if m.history_recent_steps == 0 || m.history_recent_steps > m.history_max_steps {
                return Err(invalid(
                    &key("history_recent_steps"),
                    format!(
                        "{} must be between 1 and {} ({}; a model must see at least its last result)",
                        m.history_recent_steps,
                        m.history_max_steps,
                        key("history_max_steps")
                    ),
                ));
            }
        }
        for (name, a) in &self.agents {
            let key = |k: &str| format!("agents.{name}.{k}");
            endpoint_name(&format!("agents.{name}"), name)?;
            http_url(&key("endpoint"), &a.endpoint)?;
            positive(&key("timeout_ms"), a.timeout_ms)?;
            positive(&key("max_response_bytes"), a.max_response_bytes as u64)?;
            history_max_steps(&key("history_max_steps"), a.history_max_steps)?;
        }
        positive("tools.reload_interval_ms", self.tools.reload_interval_ms)?;
        for (i, rule) in self.policy.rules.iter().enumerate() {
            let key = |k: &str| format!("policy.rules[{i}].{k}");
            if rule.tool.is_empty() {
                return Err(invalid(&key("tool"), "must name a tool"));
            }
            if rule.tenant.is_empty() {
                return Err(invalid(&key("tenant"), "must name a tenant, or \"*\" for all"));
            }
            match (rule.deny, rule.arg.is_empty(), rule.max) {
                (true, true, None) => {}
                (false, false, Some(max)) if max.is_finite() => {}
                _ => {
                    return Err(invalid(
                        &format!("policy.rules[{i}]"),
                        "must either set deny = true, or set arg and a finite max (a cap), not both",
                    ))
                }
            }
        }
        let b = &self.breakers;
        positive("breakers.failures", b.failures.into())?;
        positive("breakers.window_ms", b.window_ms)?;
        positive("breakers.cooldown_ms", b.cooldown_ms)?;
        if self.switches.refresh_ms < 100 {
            return Err(invalid("switches.refresh_ms", "must be at least 100 (every service reads Redis that often)"));
        }
        positive("switches.held_retry_ms", self.switches.held_retry_ms)?;
        if self.approvals.on_expiry == crate::OnExpiry::Escalate && self.approvals.ttl_ms == 0 {
            return Err(invalid("approvals.on_expiry", "escalate needs approvals.ttl_ms > 0 (requests never expire)"));
        }
        if !["json", "text"].contains(&self.telemetry.log_format.as_str()) {
            return Err(invalid(
                "telemetry.log_format",
                format!("{:?} is not json or text", self.telemetry.log_format),
            ));
        }
        Ok(())
    }
}
