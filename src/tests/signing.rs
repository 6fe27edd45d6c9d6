//! A checklist made for signing (issue 29 #11): "My sign-offs" lists the items the signed-in
//! user's role owns in every environment, open ones first, and follows each sign-off.

use crate::engine_runs::fixture;
use crate::support::{call, testid_text, Backend, TestApp};
use sti_rollout::domain::access::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_signoffs_lists_the_roles_items_in_every_environment() {
    let f = fixture(Backend::Sqlite, 10).await;
    let app = TestApp::start(&f.config).await;
    let stakeholder = app.sign_in_new(&f.control, "stan", Role::Viewer).await;
    let page = |client: reqwest::Client| {
        let address = app.address.clone();
        async move { client.get(format!("{address}/signoffs")).send().await.unwrap().text().await.unwrap() }
    };
    let html = page(stakeholder.clone()).await;
    assert_eq!(
        testid_text(&html, "signoffs-summary"),
        "9 open across environments, for a viewer. Items of other roles are signed on each environment's page."
    );
    for env in ["dev", "staging", "prod"] {
        assert!(html.contains(&format!("data-testid=\"signoffs-{env}\"")), "{env}");
    }
    assert!(html.contains("Development — 3 open of 3"), "{html}");
    assert!(html.contains("data-testid=\"sign-open-prod-9\""), "the stakeholder sign-off has its form");
    assert!(!html.contains("data-testid=\"mine-dev-1\""), "an operator's item is not the viewer's");

    let (status, body) = call(
        &app,
        &stakeholder,
        "sign_checklist",
        "env=dev&item_id=6&state=pass&comment=looked&evidence_url=",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let html = page(stakeholder).await;
    assert!(html.contains("Development — 2 open of 3"), "{html}");
    assert!(html.contains("pass by user:stan"), "the signed item says who signed it");
    assert!(!html.contains("data-testid=\"sign-open-dev-6\""), "a signed item has no form here");

    // the operator's page holds the operator's items
    let html = page(app.client.clone()).await;
    assert!(html.contains("Development — 5 open of 5") && html.contains("data-testid=\"mine-prod-1\""));
}
