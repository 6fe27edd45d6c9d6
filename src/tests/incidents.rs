//! An emergency stop is an incident until acknowledged (issue 29 #4): the overview and the
//! environment's page show who stopped, when, why, what it did and did not do and the way back;
//! an operator acknowledges it once (a second acknowledgement is refused), a viewer cannot.

use crate::engine_runs::{fixture, DEV};
use crate::support::{call, Backend, TestApp};
use sti_rollout::db::audit;
use sti_rollout::domain::access::Role;

/// The text of the `<section>` with `data-testid="id"`, tags taken out.
fn section_text(html: &str, id: &str) -> String {
    let start = html.find(&format!("data-testid=\"{id}\"")).unwrap_or_else(|| panic!("no {id}"));
    let end = start + html[start..].find("</section>").expect("the section ends");
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_stop_stays_on_the_pages_until_acknowledged() {
    let f = fixture(Backend::Sqlite, 200).await;
    let app = TestApp::start(&f.config).await;
    let (_, html) = app.get("/").await;
    assert!(!html.contains("data-testid=\"incident-dev\""), "no stop, no incident");

    let (status, body) =
        call(&app, &app.client, "emergency_stop", "env=dev&confirm=dev&reason=error%20rate%20spike").await;
    assert_eq!(status, 200, "{body}");
    for page in ["/", "/env/dev"] {
        let (_, html) = app.get(page).await;
        let shown = section_text(&html, "incident-dev");
        assert!(
            shown.contains("Emergency stop in dev by user:tester at ")
                && shown.contains("error rate spike")
                && shown.contains("No run was active")
                && shown.contains("It deleted nothing (no change capture is installed here)")
                && shown.contains("To go on: start the backfill again"),
            "{page}: {shown}"
        );
        assert!(!html.contains("data-testid=\"incident-staging\""), "{page}: only dev was stopped");
    }

    let viewer = app.sign_in_new(&f.control, "vera", Role::Viewer).await;
    let (status, _) = call(&app, &viewer, "acknowledge_stop", "env=dev&note=").await;
    assert_eq!(status, 403, "viewers read incidents; operators own them");
    let (status, body) = call(&app, &app.client, "acknowledge_stop", "env=dev&note=on%20it").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&app, &app.client, "acknowledge_stop", "env=dev&note=").await;
    assert_eq!(status, 409, "a second operator clicking the same button: {body}");
    assert!(body.contains("no emergency stop is waiting to be acknowledged"), "{body}");
    for page in ["/", "/env/dev"] {
        let (_, html) = app.get(page).await;
        assert!(!html.contains("data-testid=\"incident-dev\""), "{page}: acknowledged");
    }
    let entries = audit::recent(&f.control, Some(DEV), 10).await.unwrap();
    let ack = entries.iter().find(|e| e.action == "emergency_stop.acknowledge").expect("audited");
    assert_eq!((ack.actor.as_str(), ack.reason.as_deref()), ("user:tester", Some("on it")));

    // a new stop is a new incident
    let (status, _) = call(&app, &app.client, "emergency_stop", "env=dev&confirm=dev&reason=again").await;
    assert_eq!(status, 200);
    let (_, html) = app.get("/").await;
    assert!(section_text(&html, "incident-dev").contains("again"));
}
