//! The `dlq` subcommands over AdminService (list, requeue, discard dead letters) and the text and
//! JSON forms of their answers.

use std::fmt::Write as _;
use std::process::ExitCode;

use baton_proto::v1::{
    DeadLetter, DiscardDeadLetterRequest, ListDeadLettersRequest, ListDeadLettersResponse, RequeueDeadLetterRequest,
    RequeueDeadLetterResponse,
};
use serde_json::{json, Value};

use crate::cli::DlqCommand;
use crate::format::{one_line, status_name, timestamp};
use crate::output::Printer;
use batonctl::client::Client;

/// Runs one `dlq` subcommand against the gateway's AdminService.
pub async fn run(client: &mut Client, printer: Printer, command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List(args) => {
            let req = ListDeadLettersRequest { tenant: args.tenant_filter, limit: args.limit, ..Default::default() };
            let resp = client.admin.list_dead_letters(client.request(req)).await?.into_inner();
            printer.emit(|| json_list(&resp), || text_list(&resp))?;
        }
        DlqCommand::Requeue { run_id } => {
            let req = RequeueDeadLetterRequest { run_id: run_id.clone() };
            let resp = client.admin.requeue_dead_letter(client.request(req)).await?.into_inner();
            printer.emit(|| json_requeued(&run_id, &resp), || text_requeued(&run_id, &resp))?;
        }
        DlqCommand::Discard { run_id } => {
            let req = DiscardDeadLetterRequest { run_id: run_id.clone() };
            client.admin.discard_dead_letter(client.request(req)).await?;
            printer.emit(|| json_discarded(&run_id), || text_discarded(&run_id))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per dead letter (nothing when there are none).
pub fn text_list(resp: &ListDeadLettersResponse) -> String {
    resp.dead_letters.iter().map(text_line).collect::<Vec<_>>().join("\n")
}

/// `<run> tenant=<t> lane=<l> step=<n> tool=<tool> attempts=<n> origin=<topic>/<partition>@<offset>
/// dead_at=<rfc3339> error=<text>`; the error (free text, kept on one line) comes last.
pub fn text_line(d: &DeadLetter) -> String {
    let mut line = format!(
        "{} tenant={} lane={} step={} tool={} attempts={} origin={}/{}@{} dead_at={}",
        d.run_id,
        d.tenant,
        d.lane,
        d.step,
        d.tool,
        d.attempts,
        d.origin_topic,
        d.origin_partition,
        d.origin_offset,
        timestamp(d.dead_at_ms)
    );
    if !d.error.is_empty() {
        let _ = write!(line, " error={}", one_line(&d.error));
    }
    line
}

/// `<run> requeued status=<status after the requeue>`
pub fn text_requeued(run_id: &str, resp: &RequeueDeadLetterResponse) -> String {
    format!("{run_id} requeued status={}", status_name(resp.status))
}

/// `<run> discarded`
pub fn text_discarded(run_id: &str) -> String {
    format!("{run_id} discarded")
}

/// `{"dead_letters": [...]}`, each with the proto field names.
pub fn json_list(resp: &ListDeadLettersResponse) -> Value {
    json!({ "dead_letters": resp.dead_letters.iter().map(json_one).collect::<Vec<_>>() })
}

/// One DeadLetter.
pub fn json_one(d: &DeadLetter) -> Value {
    json!({
        "run_id": d.run_id,
        "tenant": d.tenant,
        "lane": d.lane,
        "step": d.step,
        "tool": d.tool,
        "attempts": d.attempts,
        "error": d.error,
        "origin_topic": d.origin_topic,
        "origin_partition": d.origin_partition,
        "origin_offset": d.origin_offset,
        "dead_at_ms": d.dead_at_ms,
    })
}

/// `{"run_id", "status"}` after a RequeueDeadLetter.
pub fn json_requeued(run_id: &str, resp: &RequeueDeadLetterResponse) -> Value {
    json!({ "run_id": run_id, "status": status_name(resp.status) })
}

/// `{"run_id", "discarded": true}` after a DiscardDeadLetter.
pub fn json_discarded(run_id: &str) -> Value {
    json!({ "run_id": run_id, "discarded": true })
}

#[cfg(test)]
mod tests {
    use baton_proto::v1::RunStatus;

    use super::*;

    fn letter() -> DeadLetter {
        DeadLetter {
            run_id: "r1".into(),
            tenant: "acme".into(),
            lane: "main".into(),
            step: 3,
            tool: "flaky".into(),
            attempts: 8,
            error: "boom\nat line 2".into(),
            origin_topic: "baton.tasks.main".into(),
            origin_partition: 2,
            origin_offset: 41,
            dead_at_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn dead_letter_line() {
        assert_eq!(
            text_line(&letter()),
            "r1 tenant=acme lane=main step=3 tool=flaky attempts=8 origin=baton.tasks.main/2@41 \
             dead_at=2023-11-14T22:13:20.123Z error=boom\\nat line 2"
        );
        let quiet = DeadLetter { error: String::new(), dead_at_ms: 0, ..letter() };
        assert!(text_line(&quiet).ends_with(" dead_at=-"), "{}", text_line(&quiet));
    }

    #[test]
    fn list_is_one_line_each() {
        let resp = ListDeadLettersResponse {
            dead_letters: vec![letter(), DeadLetter { run_id: "r2".into(), ..letter() }],
            ..Default::default()
        };
        let text = text_list(&resp);
        let runs: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
        assert_eq!(runs, ["r1", "r2"]);
        assert_eq!(text_list(&ListDeadLettersResponse::default()), "");
    }

    #[test]
    fn json_forms() {
        let resp = ListDeadLettersResponse { dead_letters: vec![letter()], ..Default::default() };
        let text = json_list(&resp).to_string();
        assert!(!text.contains('\n'));
        let back: Value = serde_json::from_str(&text).expect("valid JSON");
        let d = &back["dead_letters"][0];
        assert_eq!((d["run_id"].as_str(), d["origin_offset"].as_i64()), (Some("r1"), Some(41)));
        assert_eq!(d["error"], "boom\nat line 2");
        let requeued = RequeueDeadLetterResponse { status: RunStatus::Queued as i32 };
        assert_eq!(json_requeued("r1", &requeued), json!({ "run_id": "r1", "status": "queued" }));
        assert_eq!(text_requeued("r1", &requeued), "r1 requeued status=queued");
        assert_eq!(json_discarded("r1")["discarded"], true);
        assert_eq!(text_discarded("r1"), "r1 discarded");
    }
}
