//! The waiting box is a runbook (issue 29 #7): a run that waits on a lock the application holds
//! says for how long, how many tries and when it gives up; on PostgreSQL the console, its server
//! function and `sti-rollout blockers` name the session that holds the table (its statement
//! without its values); SQLite says what to check instead; the runbook's section is a page.

use crate::engine_runs::{count, fixture, start, DEV};
use crate::support::{call, cli, config_vars, stdout, testid_text, Backend, TestApp};
use std::sync::Arc;
use std::time::Duration;
use sti_rollout::db::{Database, SessionSettings};
use sti_rollout::domain::access::Role;
use sti_rollout::domain::blockers::Blockers;
use sti_rollout::engine::backfill;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_waiting_run_names_the_session_that_holds_its_table() {
    let f = fixture(Backend::Postgres, 1_000).await;
    let app = TestApp::start(&f.config).await;
    // the application, in a transaction left open: it locked the table the run writes, and its
    // last statement carries a value nobody else should read
    let mut app_tx = f.target.pool().begin().await.unwrap();
    for sql in [
        "set application_name = 'billing-app'",
        "lock table school_projects in access exclusive mode",
        "select count(*) from projects where title <> 'Secret plan of Ana'",
    ] {
        sqlx::query(sql).execute(&mut *app_tx).await.unwrap();
    }
    let session = SessionSettings {
        application_name: "sti-rollout/dev".into(),
        lock_timeout_ms: 200,
        statement_timeout_ms: 60_000,
    };
    let runner = Database::connect_target(&f.config.targets[DEV].url, false, &session).await.unwrap();
    let mut started = start(200, 30_000);
    let mut policy = sti_rollout::domain::policy::Policy::default();
    policy.retry.first_backoff_ms = 100;
    policy.retry.max_backoff_ms = 400;
    started.policy = Arc::new(policy);
    let held = backfill::begin(&runner, &started).await.unwrap();
    let mut quiet = |_: &sti_rollout::engine::runs::RunRecord,
                     _: Option<&sti_rollout::engine::backfill::ChunkOutcome>| {};
    let running = backfill::run(&runner, Some(&f.control), DEV, held, &mut quiet);

    let looking = async {
        // the mirror says it waits, with its tries and when it gives up
        let mut tries = 0;
        for _ in 0..100 {
            tries = count(
                &f.control,
                "select coalesce(max(hold_tries), 0) from runs where hold_kind = 'waiting'",
            )
            .await;
            if tries >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(tries >= 2, "the run never said it waited twice");
        let (_, html) = app.get("/env/dev").await;
        assert_eq!(testid_text(&html, "run-state"), "waiting");
        let shown: i64 = testid_text(&html, "waiting-tries").parse().expect("tries are a number");
        assert!(shown >= 2, "{shown}");
        let gives_up = testid_text(&html, "waiting-gives-up");
        assert!(
            gives_up.contains(" UTC (in ")
                && gives_up.contains(" min ")
                && gives_up.contains("the run fails then"),
            "{gives_up}"
        );
        assert!(html.contains("href=\"/runbook#a-run-that-waits\""), "the box links the runbook");
        assert!(html.contains("data-testid=\"waiting-stop\""), "stop is in the box");

        // the engine, the console's server function and the CLI name the application's session
        let Blockers::Sessions(sessions) = sti_rollout::engine::blockers::list(&f.target).await.unwrap()
        else {
            panic!("PostgreSQL lists its sessions")
        };
        let app_session =
            sessions.iter().find(|s| s.application == "billing-app").expect("the application's session");
        assert_eq!(app_session.state, "idle in transaction");
        assert_eq!(app_session.query, "select count(*) from projects where title <> ?");
        assert!(app_session.transaction_ms.is_some_and(|ms| ms > 0));
        assert!(sessions.iter().all(|s| !s.application.starts_with("sti-rollout/")), "{sessions:?}");

        let (status, body) = call(&app, &app.client, "blockers", "env=dev").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("billing-app") && !body.contains("Secret plan"), "{body}");
        let viewer = app.sign_in_new(&f.control, "vera", Role::Viewer).await;
        let (status, _) = call(&app, &viewer, "blockers", "env=dev").await;
        assert_eq!(status, 403, "other people's sessions are for operators");

        let out = cli(&["blockers", "--env", "dev"], &config_vars(&f.config));
        let printed = stdout(&out);
        assert!(out.status.success() && printed.contains("billing-app"), "{printed}");
        assert!(printed.contains("idle in transaction") && !printed.contains("Secret plan"), "{printed}");

        let (_, runbook) = app.get("/runbook").await;
        assert!(runbook.contains("id=\"a-run-that-waits\""), "the runbook's section is on its page");
    };
    let (run, ()) = tokio::join!(running, async {
        looking.await;
        app_tx.commit().await.unwrap();
    });
    let run = run.expect("the run goes on once the lock is let go");
    assert_eq!(run.rows_read, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_blockers_say_what_to_check_instead() {
    let f = fixture(Backend::Sqlite, 10).await;
    let app = TestApp::start(&f.config).await;
    let (status, body) = call(&app, &app.client, "blockers", "env=dev").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("SQLite does not say who holds its lock") && body.contains("fuser"), "{body}");
    let out = cli(&["blockers", "--env", "dev"], &config_vars(&f.config));
    assert!(stdout(&out).contains("SQLite does not say who holds its lock"), "{}", stdout(&out));
}
