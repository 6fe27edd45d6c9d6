//! Deferred validation as production meets it (issue 28, PostgreSQL): the keys' DDL against an
//! application that writes as its own role in transactions that hold `projects`; keys that
//! could not come back at a run's end; rows the application wrote while they were off; a
//! validation longer than its own time limit; a dead deferred run cancelled or rolled back.

use crate::engine_defects::exec;
use crate::engine_runs::{count, fixture, run_backfill, start, Fixture, DEV};
use crate::production::application;
use crate::support::Backend;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use sti_rollout::db::Database;
use sti_rollout::domain::policy::Policy;
use sti_rollout::domain::run::{RunKind, RunRequest, RunState};
use sti_rollout::engine::{backfill, deferred, operate, runs};

/// The subtype tables' keys to `projects` in the catalog: (table, valid).
async fn keys(db: &Database) -> Vec<(String, bool)> {
    use sqlx::Row;
    sqlx::query(
        "select cast(t.relname as text) as tbl, cast(case when c.convalidated then 1 else 0 end as bigint) as valid
         from pg_constraint c join pg_class t on t.oid = c.conrelid
         where c.contype = 'f' and c.confrelid = 'projects'::regclass order by 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("tbl"), r.get::<i64, _>("valid") == 1))
    .collect()
}

fn deferred_start(policy: Policy) -> backfill::Start {
    let mut s = backfill::Start { defer_fks: true, policy: Arc::new(policy), ..start(100, 30_000) };
    s.pacing.pause_ms = 30;
    s
}

/// Waits until run `id` recorded the keys it dropped.
async fn wait_for_dropped_keys(db: &Database, id: i64) {
    for _ in 0..3_000 {
        let dropped: Option<String> =
            sqlx::query_scalar("select dropped_fks from sti_backfill_runs where id = $1")
                .bind(id)
                .fetch_one(db.pool())
                .await
                .unwrap();
        if dropped.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run #{id} never dropped the keys");
}

/// The application's transactions, until `stop`: a title (which locks `projects` and nothing
/// else), a moment, then a new project (which, through the capture, writes a subtype table) —
/// the order that deadlocks with DDL taking a subtype table first. The errors it met.
async fn application_transactions(app: Database, first_id: i64, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut id = first_id;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let result: Result<(), sqlx::Error> = async {
            let mut tx = app.pool().begin().await?;
            sqlx::query("update projects set title = 'busy' where id = $1").bind(1 + id % 500).execute(&mut *tx).await?;
            sqlx::query("select pg_sleep(0.03)").execute(&mut *tx).await?;
            sqlx::query(&format!(
                "insert into projects (id, title, owner_id, project_type, school_name, grade, created_at, updated_at)
                 values ({id}, 'app', 7, 'school', 'Busy High', 3, '2024-06-01T00:00:00Z', '2024-06-01T00:00:00Z')"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            errors.push(e.to_string());
        }
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_deferred_starts_and_cancels_never_deadlock_with_application_transactions() {
    let f = fixture(Backend::Postgres, 3_000).await;
    let app = application(&f).await;
    // the capture, installed by a first live backfill, writes the subtype tables for the
    // application's inserts
    let held =
        operate::begin(&f.control, &f.target, RunKind::Backfill, &start(500, 30_000), None).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| tokio::spawn(application_transactions(app.clone(), 100_000 + w * 100_000, stop.clone())))
        .collect();
    for cycle in 0..4 {
        let held = operate::begin(
            &f.control,
            &f.target,
            RunKind::Backfill,
            &deferred_start(Policy::default()),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("cycle {cycle}: the deferred start failed: {e}"));
        let id = held.run.id;
        let (target, control) = (f.target.clone(), f.control.clone());
        let run =
            tokio::spawn(
                async move { backfill::run(&target, Some(&control), DEV, held, &mut |_, _| {}).await },
            );
        wait_for_dropped_keys(&f.target, id).await;
        runs::request(&f.target, id, RunRequest::Cancel).await.unwrap();
        let ended = run.await.unwrap().unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        assert_eq!(ended.state, RunState::Cancelled, "cycle {cycle}");
        assert_eq!(keys(&f.target).await.len(), 2, "cycle {cycle}: the keys are back after the cancel");
    }
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for writer in writers {
        errors.extend(writer.await.unwrap());
    }
    assert!(errors.is_empty(), "the application's transactions failed: {errors:#?}");
}

/// A deferred run cancelled while the application holds `projects` in a long transaction (open
/// when this returns): its end cannot put the keys back. `meanwhile` is what the application
/// writes while the keys are off.
async fn keys_left_off_behind_a_long_transaction(
    f: &Fixture,
    app: &Database,
    meanwhile: Option<&str>,
) -> sqlx::Transaction<'static, sqlx::Any> {
    // a run's end waits a second at most for the keys' locks
    let mut policy = Policy::default();
    policy.retry.give_up_after_ms = 1_000;
    let held = backfill::begin(&f.target, &deferred_start(policy)).await.unwrap();
    let id = held.run.id;
    let (target, control) = (f.target.clone(), f.control.clone());
    let run =
        tokio::spawn(async move { backfill::run(&target, Some(&control), DEV, held, &mut |_, _| {}).await });
    wait_for_dropped_keys(&f.target, id).await;
    if let Some(sql) = meanwhile {
        sqlx::query(sql).execute(app.pool()).await.unwrap();
    }
    let mut long = app.pool().begin().await.unwrap();
    sqlx::query("update projects set title = 'long' where id = 5").execute(&mut *long).await.unwrap();
    runs::request(&f.target, id, RunRequest::Cancel).await.unwrap();
    assert_eq!(run.await.unwrap().unwrap().state, RunState::Cancelled);
    assert_eq!(keys(&f.target).await, vec![], "the keys could not come back behind the long transaction");
    long
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keys_left_dropped_are_put_back_by_the_next_run_and_orphans_are_reported_not_deleted() {
    let f = fixture(Backend::Postgres, 2_000).await;
    let app = application(&f).await;
    // while the keys are off the application writes a subtype row without a project
    let orphan = "insert into school_projects (project_id, school_name, grade, backfill_run_id, created_at)
                  values (999999, 'Nowhere High', 2, null, '2024-06-01T00:00:00Z')";
    let long = keys_left_off_behind_a_long_transaction(&f, &app, Some(orphan)).await;
    assert_eq!(
        deferred::dropped(&f.target).await.unwrap().len(),
        2,
        "the dropped keys are a state the engine reports"
    );
    long.commit().await.unwrap();

    // the next run puts them back before its first chunk, and its validation finds the
    // application's orphan: reported, kept, the run failed
    let next = backfill::begin(&f.target, &start(500, 30_000)).await.unwrap();
    let ended = backfill::run(&f.target, Some(&f.control), DEV, next, &mut |_, _| {}).await;
    let error = ended.expect_err("a validation that finds the application's orphans does not complete");
    assert!(error.to_string().contains("999999"), "{error}");
    assert_eq!(keys(&f.target).await.len(), 2, "the keys are back");
    assert!(deferred::dropped(&f.target).await.unwrap().is_empty());
    assert_eq!(
        count(&f.target, "select count(*) from school_projects where project_id = 999999").await,
        1,
        "kept"
    );

    // once the application mends it, a backfill validates the keys
    exec(&f, "delete from school_projects where project_id = 999999").await;
    let last = run_backfill(&f, 500).await;
    assert_eq!(last.state, RunState::Completed);
    assert!(keys(&f.target).await.iter().all(|(_, valid)| *valid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_validation_longer_than_its_limit_fails_once_and_names_the_setting() {
    let f = fixture(Backend::Postgres, 20_000).await;
    // a limit far below what one scan of the table takes
    let policy: Policy = serde_json::from_value(serde_json::json!({
        "session": { "fk_validation_timeout_ms": 1 },
        "retry": { "give_up_after_ms": 5000 }
    }))
    .unwrap();
    let mut fast = deferred_start(policy);
    fast.pacing = sti_rollout::domain::pacing::Pacing::parse(5_000, 0, None).unwrap();
    let held = backfill::begin(&f.target, &fast).await.unwrap();
    let id = held.run.id;
    let ended = tokio::time::timeout(
        Duration::from_secs(60),
        backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}),
    )
    .await
    .expect("the run ends, not retries its scan");
    let error = ended.expect_err("the validation ran out of its time");
    assert!(error.to_string().contains("fk_validation_timeout_ms"), "{error}");
    assert_eq!(runs::get(&f.target, id).await.unwrap().state, RunState::Failed);
    assert_eq!(
        keys(&f.target).await,
        vec![("school_projects".to_owned(), false), ("self_study_projects".to_owned(), false)],
        "in place, not valid: new rows are checked"
    );
}

/// A deferred run whose runner died (its lease ran out, as after a kill -9 on another machine).
async fn a_dead_deferred_run(f: &Fixture) -> i64 {
    let mut dead = deferred_start(Policy::default());
    dead.lease_ms = 500;
    // the runner's own connections, as a process of its own has: they go with it
    let doomed = Database::connect(&f.config.targets[DEV].url).await.unwrap();
    let held = backfill::begin(&doomed, &dead).await.unwrap();
    let id = held.run.id;
    let (target, control) = (doomed.clone(), f.control.clone());
    let run =
        tokio::spawn(async move { backfill::run(&target, Some(&control), DEV, held, &mut |_, _| {}).await });
    wait_for_dropped_keys(&f.target, id).await;
    run.abort();
    let _ = run.await;
    doomed.close().await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(runs::get(&f.target, id).await.unwrap().state, RunState::Running);
    assert_eq!(keys(&f.target).await, vec![]);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_dead_deferred_run_is_ended_by_a_cancel_and_by_a_rollback() {
    let f = fixture(Backend::Postgres, 2_000).await;
    let id = a_dead_deferred_run(&f).await;
    let ended =
        operate::request(&f.control, &f.target, DEV, "user:op", Some(id), RunRequest::Cancel).await.unwrap();
    assert_eq!(ended.state, RunState::Cancelled, "nobody acts on a dead run's request: the cancel ends it");
    assert_eq!(keys(&f.target).await.len(), 2, "its keys are back");

    let id = a_dead_deferred_run(&f).await;
    let held = operate::begin(&f.control, &f.target, RunKind::Rollback, &start(500, 30_000), None)
        .await
        .unwrap_or_else(|e| panic!("a rollback over a dead deferred run: {e}"));
    assert_eq!(runs::get(&f.target, id).await.unwrap().state, RunState::Cancelled);
    assert_eq!(keys(&f.target).await.len(), 2);
    let rolled = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(rolled.state, RunState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keys_left_dropped_show_on_the_page_until_a_replicas_watch_puts_them_back() {
    let f = fixture(Backend::Postgres, 1_000).await;
    let app = application(&f).await;
    let long = keys_left_off_behind_a_long_transaction(&f, &app, None).await;

    let console = crate::support::TestApp::start(&f.config).await;
    let (status, html) = console.get("/env/dev").await;
    assert_eq!(status, 200);
    let notice = crate::support::testid_text(&html, "keys-off");
    assert!(notice.contains("could not be put back yet"), "{notice}");
    assert!(notice.contains("those of school_projects and self_study_projects to projects"), "{notice}");

    // the lock is free: the console's watch puts them back within seconds, unasked
    long.commit().await.unwrap();
    for _ in 0..100 {
        if keys(&f.target).await.len() == 2 {
            let (_, html) = console.get("/env/dev").await;
            assert!(!html.contains("data-testid=\"keys-off\""), "the notice is gone");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no replica put the keys back");
}
