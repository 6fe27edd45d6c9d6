//! A configured target is the application's database: the console checks its schema and
//! changes nothing in it unless `sti-rollout migrate --env E` is asked to, which says what it will
//! do, waits for locks only briefly and refuses a table of another shape; a configured SQLite
//! file that does not exist is an error, not a new file — on SQLite and PostgreSQL.

use crate::support::{cli, config, config_vars, fresh_pg_database, stderr, stdout, Backend};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use sti_rollout::db::{target_schema, Database, DatabaseUrl, Dialect, Schema};
use sti_rollout::domain::environment::Environment;
use sti_rollout::engine::{backfill, mirror};
use sti_rollout::server::startup::open_databases;

const DEV: Environment = Environment::Dev;

/// The application's own legacy table, as its migrations made it (no subtype tables yet).
const APPLICATION_PROJECTS: &str = "create table projects (
    id bigint primary key, title text not null, owner_id bigint not null, project_type text,
    school_name text, grade integer, pace text, goal_date date,
    created_at timestamp not null, updated_at timestamp not null)";

/// A configuration whose dev target is an application's database holding `ddl`, given to the
/// CLI as `STI_DEV_URL` (so configured, not demo), and the database itself.
async fn application_database(
    backend: Backend,
    ddl: &[&str],
) -> (BTreeMap<String, String>, Database, tempfile::TempDir) {
    let (config, dir) = config(backend, [1, 1, 1]).await;
    let url = match backend {
        Backend::Sqlite => DatabaseUrl::sqlite_file(&dir.path().join("application.db")),
        Backend::Postgres => fresh_pg_database().await,
    };
    let db = Database::connect(&url).await.unwrap();
    for statement in ddl {
        sqlx::query(statement).execute(db.pool()).await.unwrap();
    }
    let mut vars = config_vars(&config);
    vars.insert("STI_DEV_URL".into(), url.expose().to_owned());
    (vars, db, dir)
}

/// The database's tables, but for sqlx's bookkeeping table, which its migrator creates before
/// its first migration's transaction.
async fn tables(db: &Database) -> Vec<String> {
    let sql = match db.dialect() {
        Dialect::Sqlite => "select name from sqlite_master where type = 'table' order by name",
        Dialect::Postgres => {
            "select cast(table_name as text) from information_schema.tables
             where table_schema = current_schema() order by 1"
        }
    };
    let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(db.pool()).await.unwrap();
    names.into_iter().filter(|n| n != "_sqlx_migrations").collect()
}

async fn a_configured_target_is_checked_and_left_unchanged(backend: Backend) {
    let (vars, db, _dir) = application_database(backend, &[APPLICATION_PROJECTS]).await;
    let before = tables(&db).await;

    let output = cli(&["backfill", "--env", "dev"], &vars);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("table school_projects does not exist"), "{err}");
    assert!(err.contains("table sti_backfill_runs does not exist"), "{err}");
    assert!(err.contains("Nothing was changed in it; `sti-rollout migrate --env dev`"), "{err}");
    assert_eq!(tables(&db).await, before, "the application's database is as it was");

    // the plan says what would happen, and still changes nothing
    let output = cli(&["migrate", "--env", "dev", "--plan"], &vars);
    let out = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(out.contains("differs: table school_projects does not exist"), "{out}");
    assert!(out.contains("would apply these migrations"), "{out}");
    assert!(out.contains("20261127000002 backfill bookkeeping"), "{out}");
    assert_eq!(tables(&db).await, before);

    let output = cli(&["migrate", "--env", "dev"], &vars);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("now holds what the engine needs"), "{}", stdout(&output));
    assert!(target_schema::check(&db).await.unwrap().is_empty());

    let output = cli(&["backfill", "--env", "dev", "--json"], &vars);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test]
async fn sqlite_a_configured_target_is_checked_and_left_unchanged() {
    a_configured_target_is_checked_and_left_unchanged(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_configured_target_is_checked_and_left_unchanged() {
    a_configured_target_is_checked_and_left_unchanged(Backend::Postgres).await;
}

async fn migrate_refuses_a_subtype_table_of_another_shape(backend: Backend) {
    let (vars, db, _dir) = application_database(
        backend,
        &[
            APPLICATION_PROJECTS,
            "create table school_projects (project_id bigint primary key references projects (id),
                name text not null, created_at timestamp not null)",
        ],
    )
    .await;
    let before = tables(&db).await;

    let output = cli(&["migrate", "--env", "dev"], &vars);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("school_projects.school_name does not exist"), "{err}");
    assert!(err.contains("school_projects.name is not null without a default"), "{err}");
    assert!(err.contains("never alters a table that holds rows in another shape"), "{err}");
    assert_eq!(tables(&db).await, before, "nothing was created beside it");

    let output = cli(&["serve", "--addr", "127.0.0.1:0"], &vars);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("dev database: "), "{}", stderr(&output));
}

#[tokio::test]
async fn sqlite_migrate_refuses_a_subtype_table_of_another_shape() {
    migrate_refuses_a_subtype_table_of_another_shape(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_migrate_refuses_a_subtype_table_of_another_shape() {
    migrate_refuses_a_subtype_table_of_another_shape(Backend::Postgres).await;
}

/// An application transaction left open on projects: `migrate` gives up after its lock timeout
/// instead of queueing (and so blocking every later insert into projects), and changes nothing.
#[tokio::test]
async fn postgres_migrate_waits_for_a_lock_only_briefly() {
    let (vars, db, _dir) = application_database(Backend::Postgres, &[APPLICATION_PROJECTS]).await;
    let before = tables(&db).await;
    let mut open = db.pool().begin().await.unwrap();
    sqlx::query("insert into projects values (1, 't', 1, 'school', 'S', 3, null, null, now(), now())")
        .execute(&mut *open)
        .await
        .unwrap();

    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        let output = cli(&["migrate", "--env", "dev", "--lock-timeout-ms", "300"], &vars);
        (output, vars)
    });
    let (output, vars) = tokio::time::timeout(Duration::from_secs(30), output).await.unwrap().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("waited more than 300 ms for a lock"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "gave up in {:?}", started.elapsed());
    open.commit().await.unwrap();
    assert_eq!(tables(&db).await, before, "rolled back: nothing was changed");

    let output = cli(&["migrate", "--env", "dev"], &vars);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test]
async fn a_configured_sqlite_target_that_does_not_exist_is_an_error_not_a_new_file() {
    let (config, dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let missing = dir.path().join("moved-away.db");
    let mut vars = config_vars(&config);
    vars.insert("STI_DEV_URL".into(), format!("sqlite:{}", missing.display()));

    for args in [&["backfill", "--env", "dev"][..], &["verify", "--env", "dev"], &["migrate"]] {
        let output = cli(args, &vars);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("{} does not exist", missing.display())), "{err}");
        assert!(!missing.exists(), "{args:?} created the file");
    }
}

/// What the checks expect is what the migrations make: a migrated target has no difference.
async fn a_migrated_target_holds_what_the_engine_needs(backend: Backend) {
    let url = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = DatabaseUrl::sqlite_file(&dir.path().join("t.db"));
            let db = Database::open(&url, Schema::Target).await.unwrap();
            assert_eq!(target_schema::check(&db).await.unwrap(), vec![]);
            assert_eq!(target_schema::pending(&db).await.unwrap(), vec![]);
            return;
        }
        Backend::Postgres => fresh_pg_database().await,
    };
    let db = Database::open(&url, Schema::Target).await.unwrap();
    assert_eq!(target_schema::check(&db).await.unwrap(), vec![]);
    assert_eq!(target_schema::pending(&db).await.unwrap(), vec![]);
}

#[tokio::test]
async fn sqlite_a_migrated_target_holds_what_the_engine_needs() {
    a_migrated_target_holds_what_the_engine_needs(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_migrated_target_holds_what_the_engine_needs() {
    a_migrated_target_holds_what_the_engine_needs(Backend::Postgres).await;
}

async fn mirrored_state(control: &Database, run_id: i64) -> (String, i64) {
    let row = sqlx::query("select state, chunks from runs where environment = 'dev' and run_id = $1")
        .bind(run_id)
        .fetch_one(control.pool())
        .await
        .unwrap();
    use sqlx::Row;
    (row.get("state"), row.get("chunks"))
}

async fn mirrored_chunks(control: &Database, run_id: i64) -> i64 {
    let sql = format!("select count(*) from run_chunks where environment = 'dev' and run_id = {run_id}");
    crate::engine_runs::count(control, &sql).await
}

/// A snapshot that arrives late (a slow writer, a second runner's) never takes the mirror back.
async fn a_stale_snapshot_never_overwrites_a_newer_one(backend: Backend) {
    let f = crate::engine_runs::fixture(backend, 1_000).await;
    let run = crate::engine_runs::run_backfill(&f, 100).await;
    let mut stale = run.clone();
    stale.state = sti_rollout::domain::run::RunState::Running;
    stale.chunks = 3;
    stale.updated_at -= 1_000;
    mirror::record(Some(&f.control), DEV, &stale).await;
    assert_eq!(mirrored_state(&f.control, run.id).await, ("completed".to_owned(), run.chunks));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_stale_snapshot_never_overwrites_a_newer_one() {
    a_stale_snapshot_never_overwrites_a_newer_one(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_stale_snapshot_never_overwrites_a_newer_one() {
    a_stale_snapshot_never_overwrites_a_newer_one(Backend::Postgres).await;
}

/// The control database locked for the whole run: the run goes at its own pace (before, every
/// mirror write waited out SQLite's busy timeout, and PostgreSQL's lock for ever), and the
/// mirror, reconciled from the target afterwards, holds the completed run and all its chunks.
async fn a_locked_control_database_neither_slows_a_run_nor_loses_it(backend: Backend) {
    let f = crate::engine_runs::fixture(backend, 2_000).await;
    let mut lock = f.control.begin_write().await.unwrap();
    let hold = match backend {
        Backend::Sqlite => "update environments set position = position where name = 'dev'",
        Backend::Postgres => "lock table runs, run_chunks in exclusive mode",
    };
    sqlx::query(hold).execute(&mut *lock).await.unwrap();

    let started = Instant::now();
    let held = backfill::begin(&f.target, &crate::engine_runs::start(100, 30_000)).await.unwrap();
    let run = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    let took = started.elapsed();
    assert_eq!(run.state, sti_rollout::domain::run::RunState::Completed);
    assert!(run.chunks >= 20, "{} chunks", run.chunks);
    assert!(took < Duration::from_secs(20), "a run of {} chunks took {took:?}", run.chunks);

    lock.rollback().await.unwrap();
    mirror::reconcile(&f.control, DEV, &f.target).await.unwrap();
    assert_eq!(mirrored_state(&f.control, run.id).await, ("completed".to_owned(), run.chunks));
    assert_eq!(mirrored_chunks(&f.control, run.id).await, run.chunks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_locked_control_database_neither_slows_a_run_nor_loses_it() {
    a_locked_control_database_neither_slows_a_run_nor_loses_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_locked_control_database_neither_slows_a_run_nor_loses_it() {
    a_locked_control_database_neither_slows_a_run_nor_loses_it(Backend::Postgres).await;
}

/// A chunk committed in the target whose mirror write never happened (a kill between the two)
/// is a hole in the mirrored ledger until the next start fills it.
async fn a_hole_in_the_mirrored_ledger_is_filled_from_the_target(backend: Backend) {
    let f = crate::engine_runs::fixture(backend, 1_000).await;
    let run = crate::engine_runs::run_backfill(&f, 100).await;
    sqlx::query("delete from run_chunks where environment = 'dev' and chunk_no in (3, 4)")
        .execute(f.control.pool())
        .await
        .unwrap();
    let done = mirror::reconcile(&f.control, DEV, &f.target).await.unwrap();
    assert_eq!(done.chunks, 2);
    assert_eq!(mirrored_chunks(&f.control, run.id).await, run.chunks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_hole_in_the_mirrored_ledger_is_filled_from_the_target() {
    a_hole_in_the_mirrored_ledger_is_filled_from_the_target(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_hole_in_the_mirrored_ledger_is_filled_from_the_target() {
    a_hole_in_the_mirrored_ledger_is_filled_from_the_target(Backend::Postgres).await;
}

/// dev's target replaced by a new, empty database (recreated, or the URL changed): its run ids
/// start again at 1, so the mirror's view of the former database goes — its completed run shown
/// at 2.5%, or its verification opening the flag gate, were what came of keeping it.
async fn a_new_target_database_is_not_mistaken_for_the_one_mirrored(backend: Backend) {
    let (mut config, _dir) = config(backend, [1, 1, 1]).await;
    let (control, targets) = open_databases(&config).await.unwrap();
    let dev = targets.get(DEV);
    sti_rollout::db::seed::seed(dev, 1_000, sti_rollout::db::seed::SeedMode::Fresh, |_, _| {}).await.unwrap();
    let held = backfill::begin(dev, &crate::engine_runs::start(100, 30_000)).await.unwrap();
    backfill::run(dev, Some(&control), DEV, held, &mut |_, _| {}).await.unwrap();
    sti_rollout::engine::operate::verify(&control, dev, DEV, "test", &mut |_, _| {}).await.unwrap();
    let count = crate::engine_runs::count;
    assert_eq!(count(&control, "select count(*) from runs where environment = 'dev'").await, 1);

    let fresh = match backend {
        Backend::Sqlite => DatabaseUrl::sqlite_file(&config.data_dir.join("dev-recreated.db")),
        Backend::Postgres => fresh_pg_database().await,
    };
    config.targets.get_mut(DEV).url = fresh;
    let (control, _targets) = open_databases(&config).await.unwrap();
    assert_eq!(count(&control, "select count(*) from runs where environment = 'dev'").await, 0);
    assert_eq!(count(&control, "select count(*) from run_chunks where environment = 'dev'").await, 0);
    assert_eq!(count(&control, "select count(*) from verifications where environment = 'dev'").await, 0);
    assert_eq!(count(&control, "select count(*) from audit_log where action = 'target.replaced'").await, 1);
    let gate = sti_rollout::db::rollout::phases(&control, DEV).await.unwrap();
    let flag = sti_rollout::domain::phases::flag_gate(DEV, &gate);
    assert!(flag.is_err(), "the new database was never verified: {flag:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_new_target_database_is_not_mistaken_for_the_one_mirrored() {
    a_new_target_database_is_not_mistaken_for_the_one_mirrored(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_new_target_database_is_not_mistaken_for_the_one_mirrored() {
    a_new_target_database_is_not_mistaken_for_the_one_mirrored(Backend::Postgres).await;
}

/// staging restored from a dump of dev, or named by a URL the configuration cannot tell from
/// dev's (another host name for one server): one database by the identity it keeps, refused.
async fn two_environments_whose_targets_are_one_database_are_refused(backend: Backend) {
    let (config, _dir) = config(backend, [1, 1, 1]).await;
    let (_control, targets) = open_databases(&config).await.unwrap();
    let dev_identity = sti_rollout::db::target::identity(targets.get(DEV)).await.unwrap();
    let staging = targets.get(sti_rollout::domain::environment::Environment::Staging);
    sqlx::query("update sti_target_identity set id = $1")
        .bind(&dev_identity)
        .execute(staging.pool())
        .await
        .unwrap();

    let Err(refused) = open_databases(&config).await else {
        panic!("two environments on one database were accepted")
    };
    assert_eq!(
        refused.to_string(),
        format!(
            "dev and staging are one database (both targets hold identity {dev_identity}): each environment \
             needs its own, or a rollback in one deletes the other's rows. If one is a restored copy of the \
             other, give the copy its own identity with `delete from sti_target_identity` in it"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_environments_whose_targets_are_one_database_are_refused() {
    two_environments_whose_targets_are_one_database_are_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_environments_whose_targets_are_one_database_are_refused() {
    two_environments_whose_targets_are_one_database_are_refused(Backend::Postgres).await;
}
