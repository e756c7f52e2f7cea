//! ListApprovals pages: oldest request first, every waiting run exactly once across pages, an
//! approval resolved between pages shifts nothing, and a forged page token is refused.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use baton_proto::v1::{ListApprovalsRequest, RunStatus};
use baton_testkit::agents::AgentStack;
use baton_testkit::runs::{approve, require_approval, script, submit, wait_for_run, wait_for_status};
use tonic::Code;

const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_are_listed_page_by_page_each_once() {
    let a = AgentStack::start("approval-pages", |_| {}).await;
    let mut client = a.stack.client().await;
    let mut admin = a.stack.admin().await;
    require_approval(&mut admin, "ship_order").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let id = submit(&mut client, script(&[("ship_order", &format!(r#"{{"order_id":"P{i}"}}"#))]), "").await;
        wait_for_run(&mut client, &id, WITHIN, |r| r.wait_reason == "approval").await.unwrap();
        ids.push(id);
    }

    // Pages of three: 3, 3, 1, oldest request first. The first run is approved between the first
    // and second page: nothing after it is skipped or repeated.
    let mut listed = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let req = ListApprovalsRequest { limit: 3, page_token: token.clone() };
        let page = client.list_approvals(req).await.unwrap().into_inner();
        pages += 1;
        assert!(page.approvals.len() <= 3);
        listed.extend(page.approvals.iter().map(|p| p.run_id.clone()));
        if pages == 1 {
            let first = &page.approvals[0];
            client
                .resolve_approval(approve(&first.run_id, first.approval.as_ref().unwrap(), "ops", "ok"))
                .await
                .unwrap();
            wait_for_status(&mut client, &first.run_id, RunStatus::Succeeded, WITHIN).await.unwrap();
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 10, "pages never ended");
    }
    assert_eq!(listed, ids, "every waiting run once, oldest request first");
    assert_eq!(listed.iter().collect::<HashSet<_>>().len(), 7);
    assert_eq!(pages, 3);

    // Listed again from the start: the approved run is gone.
    let all = client.list_approvals(ListApprovalsRequest { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(all.into_inner().approvals.iter().map(|p| p.run_id.clone()).collect::<Vec<_>>(), ids[1..]);

    for bad in ["nonsense", "12:", "x:run", "5:../etc"] {
        let req = ListApprovalsRequest { limit: 3, page_token: bad.to_string() };
        let e = client.list_approvals(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {e:?}");
        assert!(e.message().contains("page_token"), "{e:?}");
    }
}
