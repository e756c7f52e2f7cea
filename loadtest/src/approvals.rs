//! Workload "approvals": what runs waiting for a person cost, and whether an operator can page
//! through them. Makes the `ledger` tool require an approval (an operator switch), submits `runs`
//! runs of `[ledger, echo]` at `rate` per second, so that every one of them parks on its approval
//! (no worker holds it); reads Redis's memory before and at that peak; then pages through
//! ListApprovals from the oldest request to the last, timing each page, and checks that every
//! run was listed exactly once. The switch is lifted at the end; the runs stay parked.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use baton_proto::v1::{
    planner, ListApprovalsRequest, Planner, RunSpec, RunStatus, ScriptPlan, SetToolSwitchRequest, ToolCall,
};

use crate::parked::{list_all, submit_at_rate, used_memory};
use batonctl::client::Client;

/// Approvals per ListApprovals page (the gateway's default `max_page_size`).
const PAGE: u32 = 500;
/// The tool made to require an approval.
const TOOL: &str = "ledger";

/// The shape of an approvals workload.
#[derive(Debug, Clone)]
pub struct Approvals {
    /// Runs to park on an approval.
    pub runs: u64,
    /// Submissions per second.
    pub rate: u64,
    /// The stack's Redis, for its memory.
    pub redis_url: String,
    /// Bound on waiting for the runs to park.
    pub timeout: Duration,
}

/// What the workload measured.
pub struct ApprovalsReport {
    runs: u64,
    parked: u64,
    bytes_per_parked_run: f64,
    listed: u64,
    distinct: u64,
    page_ms: Vec<u64>,
    errors: Vec<String>,
}

impl ApprovalsReport {
    /// The report as text with a `RESULT` line.
    pub fn render(&self) -> String {
        let mut ms = self.page_ms.clone();
        ms.sort_unstable();
        let pick = |q: f64| ms.get(((ms.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(0);
        let mut out = format!(
            "baton-loadtest approvals: {} runs waiting for an approval, {:.0} B of Redis memory each; ListApprovals \
             paged through {} of them in {} pages of {PAGE} ({} distinct), a page in p50 {} ms, p99 {} ms, max {} ms\n",
            self.parked,
            self.bytes_per_parked_run,
            self.listed,
            ms.len(),
            self.distinct,
            pick(0.5),
            pick(0.99),
            ms.last().copied().unwrap_or(0)
        );
        for e in self.errors.iter().take(5) {
            out.push_str(&format!("  error: {e}\n"));
        }
        out.push_str(&format!(
            "RESULT mode=approvals runs={} parked={} bytes_per_parked_run={:.0} listed={} distinct={} pages={} \
             page_p50_ms={} page_p99_ms={} page_max_ms={} errors={}",
            self.runs,
            self.parked,
            self.bytes_per_parked_run,
            self.listed,
            self.distinct,
            ms.len(),
            pick(0.5),
            pick(0.99),
            ms.last().copied().unwrap_or(0),
            self.errors.len()
        ));
        out
    }

    /// Passed: every run parked and was listed exactly once, with no error.
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.parked == self.runs && self.listed == self.runs && self.distinct == self.runs
    }
}

fn spec() -> RunSpec {
    let steps = vec![
        ToolCall { tool: TOOL.to_string(), args_json: "{}".to_string() },
        ToolCall { tool: "echo".to_string(), args_json: "{}".to_string() },
    ];
    RunSpec {
        goal: "baton-loadtest approvals: parked on an approval".to_string(),
        planner: Some(Planner { kind: Some(planner::Kind::Script(ScriptPlan { steps })) }),
        labels: [("loadtest".to_string(), "approvals".to_string())].into(),
        ..RunSpec::default()
    }
}

async fn require_approval(target: &Client, required: bool) -> anyhow::Result<()> {
    let mut admin = target.admin.clone();
    let req = SetToolSwitchRequest {
        tool: TOOL.to_string(),
        requires_approval: Some(required),
        actor: "baton-loadtest".to_string(),
        reason: "approvals workload".to_string(),
        ..SetToolSwitchRequest::default()
    };
    admin.set_tool_switch(target.request(req)).await?;
    Ok(())
}

/// Runs the workload against `target`.
pub async fn run(target: &Client, w: &Approvals) -> anyhow::Result<ApprovalsReport> {
    let started = Instant::now();
    let before = used_memory(&w.redis_url).await?;
    require_approval(target, true).await?;
    // Every service re-reads the switches within `switches.refresh_ms` (1 s by default).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut errors = submit_at_rate(target, w.runs, w.rate, &spec()).await?;
    eprintln!("submitted {} runs in {:.1?}", w.runs, started.elapsed());
    let parked = loop {
        let runs = list_all(target).await?;
        let parked = runs.iter().filter(|(_, _, s)| *s == RunStatus::Waiting).count() as u64;
        if parked >= w.runs || started.elapsed() > w.timeout {
            break parked;
        }
        eprintln!("{parked}/{} runs waiting for an approval", w.runs);
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    let at_peak = used_memory(&w.redis_url).await?;
    let bytes_per_parked_run = at_peak.saturating_sub(before) as f64 / parked.max(1) as f64;
    eprintln!("{parked} runs parked; Redis memory {before} → {at_peak} B; paging ListApprovals");

    let (mut rpc, mut token, mut page_ms, mut seen, mut listed) =
        (target.rpc.clone(), String::new(), Vec::new(), HashSet::new(), 0u64);
    loop {
        let at = Instant::now();
        let req = ListApprovalsRequest { limit: PAGE, page_token: token.clone() };
        let page = rpc.list_approvals(target.request(req)).await?.into_inner();
        page_ms.push(at.elapsed().as_millis() as u64);
        listed += page.approvals.len() as u64;
        seen.extend(page.approvals.into_iter().map(|p| p.run_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    if let Err(e) = require_approval(target, false).await {
        errors.push(format!("cannot lift the approval switch on {TOOL}: {e}"));
    }
    Ok(ApprovalsReport {
        runs: w.runs,
        parked,
        bytes_per_parked_run,
        listed,
        distinct: seen.len() as u64,
        page_ms,
        errors,
    })
}
