//! Workload W2 (one long run): a single run of K `echo` steps whose outputs are about 1 KiB
//! each, watched to its end. A step's cost must not grow with the run's length: the report
//! compares the time per step of the first and the last `window` steps (the span of their
//! STEP_COMPLETED times divided by the window, so millisecond timestamps still resolve steps
//! well under a millisecond), and with `--redis-url` reports the run's Redis memory.

use std::time::{Duration, Instant};

use baton_proto::v1::{
    planner, Budget, EventKind, Planner, RunEvent, RunSpec, RunStatus, ScriptPlan, SubmitRunRequest, ToolCall,
    WatchRunRequest,
};

use batonctl::client::Client;

/// The shape of a W2 workload.
#[derive(Debug, Clone)]
pub struct W2 {
    /// Steps of the one run.
    pub steps: u32,
    /// Bytes of padding in each step's arguments (echo returns them: the output size).
    pub output_bytes: usize,
    /// Steps compared at each end of the run.
    pub window: usize,
}

/// What W2 measured.
#[derive(Debug, Clone)]
pub struct W2Report {
    /// The run.
    pub run_id: String,
    /// Its final status.
    pub status: RunStatus,
    /// Steps completed.
    pub steps: usize,
    /// Submit to finished.
    pub elapsed: Duration,
    /// Mean time per step over the first window, and its longest gap between steps, ms.
    pub first: (f64, f64),
    /// Mean time per step over the last window, and its longest gap between steps, ms.
    pub last: (f64, f64),
    /// Bytes of Redis memory held by the run's keys, if asked.
    pub redis_bytes: Option<u64>,
    /// Steps compared at each end.
    pub window: usize,
}

impl W2Report {
    /// The report as text with a `RESULT` line.
    pub fn render(&self) -> String {
        let ratio = if self.first.0 > 0.0 { self.last.0 / self.first.0 } else { 0.0 };
        let memory = self.redis_bytes.map_or("not measured (pass --redis-url)".into(), |b| format!("{} KiB", b / 1024));
        format!(
            "baton-loadtest w2: run {} {} with {} steps in {:.1} s ({:.0} steps/s)\n\
             time per step, first {n}: mean {:.3} ms (longest gap {:.0} ms); last {n}: mean {:.3} ms (longest gap \
             {:.0} ms); last/first = {:.2}\nRedis memory of the run: {memory}\n\
             RESULT mode=w2 steps={} elapsed_s={:.1} first_ms_per_step={:.3} last_ms_per_step={:.3} ratio={:.2} \
             redis_kib={}",
            self.run_id,
            baton_core::status::name(self.status),
            self.steps,
            self.elapsed.as_secs_f64(),
            self.steps as f64 / self.elapsed.as_secs_f64().max(0.001),
            self.first.0,
            self.first.1,
            self.last.0,
            self.last.1,
            ratio,
            self.steps,
            self.elapsed.as_secs_f64(),
            self.first.0,
            self.last.0,
            ratio,
            self.redis_bytes.map_or(-1, |b| (b / 1024) as i64),
            n = self.window,
        )
    }

    /// Passed: the run succeeded and its last steps cost at most 1.5x its first.
    pub fn passed(&self) -> bool {
        self.status == RunStatus::Succeeded && self.last.0 <= 1.5 * self.first.0.max(0.001)
    }
}

impl W2 {
    fn spec(&self) -> RunSpec {
        let pad = "x".repeat(self.output_bytes);
        let steps = (0..self.steps)
            .map(|i| ToolCall { tool: "echo".into(), args_json: format!(r#"{{"step":{i},"pad":"{pad}"}}"#) })
            .collect();
        RunSpec {
            goal: "baton-loadtest w2".into(),
            planner: Some(Planner { kind: Some(planner::Kind::Script(ScriptPlan { steps })) }),
            budget: Some(Budget { max_steps: self.steps, max_tool_calls: self.steps, ..Budget::default() }),
            ..RunSpec::default()
        }
    }
}

/// Runs W2 against `target`; with `redis_url`, measures the run's memory in that Redis.
pub async fn run(target: &Client, w: &W2, redis_url: Option<&str>) -> anyhow::Result<W2Report> {
    let mut client = target.clone();
    let started = Instant::now();
    let req = SubmitRunRequest { spec: Some(w.spec()), idempotency_key: String::new() };
    let run_id = client.rpc.submit_run(client.request(req)).await?.into_inner().run_id;
    eprintln!("baton-loadtest w2: run {run_id}, {} steps of ~{} B outputs", w.steps, w.output_bytes);
    let mut stream = client
        .rpc
        .watch_run(client.request(WatchRunRequest { run_id: run_id.clone(), after_seq: 0 }))
        .await?
        .into_inner();
    let mut events: Vec<RunEvent> = Vec::new();
    while let Some(event) = stream.message().await? {
        events.push(event);
    }
    let elapsed = started.elapsed();
    let status = events.last().map_or(RunStatus::Unspecified, RunEvent::status);
    let done: Vec<i64> = events.iter().filter(|e| e.kind() == EventKind::StepCompleted).map(|e| e.at_ms).collect();
    let window = w.window.min(done.len() / 2).max(1);
    let first = per_step(&done[..(window + 1).min(done.len())]);
    let last = per_step(&done[done.len().saturating_sub(window + 1)..]);
    let redis_bytes = match redis_url {
        Some(url) => Some(memory(url, &run_id).await?),
        None => None,
    };
    Ok(W2Report { run_id, status, steps: done.len(), elapsed, first, last, redis_bytes, window })
}

/// Mean time per step across `times` (completion times, ms) and the longest gap between two.
fn per_step(times: &[i64]) -> (f64, f64) {
    let (Some(first), Some(last)) = (times.first(), times.last()) else { return (0.0, 0.0) };
    let steps = (times.len() - 1).max(1) as f64;
    let longest = times.windows(2).map(|p| p[1] - p[0]).max().unwrap_or(0);
    ((last - first) as f64 / steps, longest as f64)
}

/// Bytes of the run's keys in Redis (`MEMORY USAGE`, sampled fully).
async fn memory(url: &str, run_id: &str) -> anyhow::Result<u64> {
    let mut conn = tokio::net::TcpStream::connect(url.trim_start_matches("redis://")).await?;
    let mut total = 0;
    for key in ["run", "spec", "steps", "events", "fence"] {
        let name = format!("baton:{key}:{{{run_id}}}");
        total += resp_integer(&mut conn, &["MEMORY", "USAGE", &name, "SAMPLES", "0"]).await?.max(0) as u64;
    }
    Ok(total)
}

/// Sends one command in RESP and reads an integer (or nil as 0) reply.
async fn resp_integer(conn: &mut tokio::net::TcpStream, args: &[&str]) -> anyhow::Result<i64> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let mut command = format!("*{}\r\n", args.len());
    for a in args {
        command.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    conn.write_all(command.as_bytes()).await?;
    let mut reader = tokio::io::BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    match line.chars().next() {
        Some(':') => Ok(line[1..].trim().parse()?),
        Some('$') | Some('_') => Ok(0),
        _ => anyhow::bail!("unexpected Redis reply {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_step_time_resolves_below_a_millisecond() {
        let times = [100, 100, 101, 101, 101, 102, 102, 110, 110];
        assert_eq!(per_step(&times), (10.0 / 8.0, 8.0));
        assert_eq!(per_step(&[]), (0.0, 0.0));
    }

    #[test]
    fn outputs_are_about_the_asked_size() {
        let w = W2 { steps: 3, output_bytes: 1024, window: 1 };
        let spec = w.spec();
        let Some(planner::Kind::Script(s)) = spec.planner.and_then(|p| p.kind) else { panic!() };
        assert_eq!(s.steps.len(), 3);
        assert!((1024..1100).contains(&s.steps[2].args_json.len()));
    }
}
