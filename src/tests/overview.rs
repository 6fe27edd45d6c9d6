//! The overview page and `/health`, served in-process against fresh databases.

use crate::support::{config, open, testid_text, Backend, TestApp};
use sti_rollout::db::Schema;
use sti_rollout::domain::environment::Environment;

async fn the_overview_shows_each_environments_real_figures(backend: Backend) {
    let (config, _dir) = config(backend, [120, 340, 560]).await;
    let app = TestApp::start(&config).await;

    let (status, html) = app.get("/").await;
    assert_eq!(status, 200);
    for (env, legacy) in [("dev", "120"), ("staging", "340"), ("prod", "560")] {
        assert_eq!(testid_text(&html, &format!("legacy-{env}")), legacy, "{env}");
        assert_eq!(testid_text(&html, &format!("school-{env}")), "0", "{env}");
        assert_eq!(testid_text(&html, &format!("self-study-{env}")), "0", "{env}");
        assert_eq!(testid_text(&html, &format!("flag-{env}")), "ENABLE_STI off", "{env}");
        assert_eq!(testid_text(&html, &format!("run-{env}")), "No backfill has run here yet", "{env}");
    }
    assert_eq!(testid_text(&html, "total-legacy"), "1,020");

    // subtype rows the application wrote are counted as they are
    let dev = open(&config.targets[Environment::Dev].url, Schema::Target).await;
    sqlx::query(
        "insert into school_projects (project_id, school_name, grade, created_at)
         select id, 'Riverside Academy', 7, created_at from projects where id <= 7",
    )
    .execute(dev.pool())
    .await
    .unwrap();
    sqlx::query(
        "insert into self_study_projects (project_id, pace, created_at)
         select id, 'regular', created_at from projects where id between 8 and 10",
    )
    .execute(dev.pool())
    .await
    .unwrap();

    let (_, html) = app.get("/").await;
    assert_eq!(testid_text(&html, "school-dev"), "7");
    assert_eq!(testid_text(&html, "self-study-dev"), "3");
    assert_eq!(testid_text(&html, "coverage-dev"), "8.3%");
    assert_eq!(testid_text(&html, "school-staging"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_overview_shows_each_environments_real_figures() {
    the_overview_shows_each_environments_real_figures(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_overview_shows_each_environments_real_figures() {
    the_overview_shows_each_environments_real_figures(Backend::Postgres).await;
}

async fn restarting_the_console_does_not_seed_again(backend: Backend) {
    let (config, _dir) = config(backend, [50, 60, 70]).await;
    drop(TestApp::start(&config).await);
    let app = TestApp::start(&config).await;

    let (_, html) = app.get("/").await;
    assert_eq!(testid_text(&html, "legacy-dev"), "50");
    assert_eq!(testid_text(&html, "legacy-prod"), "70");
    let control = open(&config.control, Schema::Control).await;
    let seeds: i64 =
        sqlx::query_scalar("select count(*) from seed_events").fetch_one(control.pool()).await.unwrap();
    assert_eq!(seeds, 3, "one seed per environment, from the first start only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_restarting_the_console_does_not_seed_again() {
    restarting_the_console_does_not_seed_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_the_console_does_not_seed_again() {
    restarting_the_console_does_not_seed_again(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_already_has_rows_gets_no_demo_data() {
    let (config, _dir) = config(Backend::Sqlite, [40, 40, 40]).await;
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let dev = open(&config.targets[Environment::Dev].url, Schema::Target).await;
    sqlx::query(
        "insert into projects (id, title, owner_id, project_type, created_at, updated_at)
         values (1, 'Existing', 1, 'school', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')",
    )
    .execute(dev.pool())
    .await
    .unwrap();

    let app = TestApp::start(&config).await;
    let (_, html) = app.get("/").await;
    assert_eq!(testid_text(&html, "legacy-dev"), "1");
    assert_eq!(testid_text(&html, "legacy-staging"), "40");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_database_that_breaks_is_shown_on_its_panel_only() {
    let (config, _dir) = config(Backend::Sqlite, [10, 10, 10]).await;
    let app = TestApp::start(&config).await;
    let staging = open(&config.targets[Environment::Staging].url, Schema::Target).await;
    sqlx::query("drop table self_study_projects").execute(staging.pool()).await.unwrap();

    let (status, html) = app.get("/").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"data-testid="error-staging""#), "staging shows its error");
    assert!(html.contains("the database could not be read; the server log has the cause"));
    assert!(!html.contains(r#"data-testid="legacy-staging""#));
    assert_eq!(testid_text(&html, "legacy-dev"), "10");
    assert_eq!(testid_text(&html, "legacy-prod"), "10");
    assert!(!html.contains("no such table"), "internal causes stay in the server log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_ok_and_unknown_pages_are_not_found() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;

    let (status, body) = app.get("/health").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok","control_database":"up"}"#));
    let (status, body) = app.get("/no-such-page").await;
    assert_eq!(status, 404);
    assert!(body.contains("This page does not exist"));
}

/// Pages rendered at the same time each get their own whole page: no render sees another's
/// state disposed under it (a 500) and none waits forever (see `server::render`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_rendered_at_the_same_time_all_answer_whole() {
    let (config, _dir) = config(Backend::Sqlite, [30, 40, 50]).await;
    let app = TestApp::start(&config).await;
    for round in 0..40 {
        let mut renders = tokio::task::JoinSet::new();
        for (path, marker) in [
            ("/", "data-testid=\"legacy-prod\""),
            ("/env/dev", "data-testid=\"phases\""),
            ("/audit", "data-testid=\"audit-total\""),
            ("/env/prod", "data-testid=\"phases\""),
            ("/", "data-testid=\"legacy-dev\""),
        ] {
            let client = app.client.clone();
            let url = format!("{}{path}", app.address);
            renders.spawn(async move {
                let response = client.get(&url).send().await.unwrap();
                let status = response.status().as_u16();
                let html = response.text().await.unwrap();
                (path, marker, status, html)
            });
        }
        while let Some(rendered) = renders.join_next().await {
            let (path, marker, status, html) = rendered.unwrap();
            assert_eq!(status, 200, "{path} in round {round}: {html}");
            assert!(html.contains(marker), "{path} in round {round} lacks {marker}");
        }
    }
}
