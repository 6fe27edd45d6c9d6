//! Change capture: once a live backfill has started, raw application writes to `projects` —
//! inserts, type changes, rows turning dirty and clean, deletes — keep the subtype rows in step,
//! during the run and after it; a rollback removes the capture and every row it wrote.

use crate::engine_defects::exec;
use crate::engine_runs::{count, fixture, start, Fixture, DEV};
use crate::support::Backend;
use sti_rollout::db::audit;
use sti_rollout::domain::run::{RunKind, RunState};
use sti_rollout::engine::{backfill, capture, operate, verify};

/// The id of some legacy row that identification makes a school row.
async fn a_school_row(f: &Fixture, after: i64) -> i64 {
    count(
        &f.target,
        &format!(
            "select min(id) from projects where id > {after} and project_type in ('school', 'School')
               and school_name is not null and (grade is null or grade between 1 and 13)"
        ),
    )
    .await
}

const NEW_ROW: &str = "insert into projects (id, title, owner_id, project_type, school_name, grade, pace, goal_date, created_at, updated_at)
    values ({id}, 'new', 1, 'school', 'Late High', 4, null, null, '2024-05-01T00:00:00Z', '2024-05-01T00:00:00Z')";

async fn application_writes_keep_the_subtype_rows_in_step(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    let held =
        operate::begin(&f.control, &f.target, RunKind::Backfill, &start(200, 30_000), None).await.unwrap();
    assert!(capture::installed(&f.target).await.unwrap(), "the live backfill installed the capture");

    // while the run has not copied them yet: a type change, a row turned dirty, a new row past
    // the frozen bound, a deleted row, a title
    let moved = a_school_row(&f, 1_500).await;
    exec(&f, &format!("update projects set project_type = 'self-study', pace = ' Relaxed ', school_name = null, grade = null where id = {moved}")).await;
    let dirty = a_school_row(&f, moved).await;
    exec(&f, &format!("update projects set school_name = '  ' where id = {dirty}")).await;
    let late = held.run.high_id + 10;
    exec(&f, &NEW_ROW.replace("{id}", &late.to_string())).await;
    let deleted = a_school_row(&f, dirty).await;
    exec(&f, &format!("delete from projects where id = {deleted}")).await;

    let done = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    assert_eq!(
        count(
            &f.target,
            &format!(
                "select count(*) from school_projects where project_id = {late} and backfill_run_id = 0"
            )
        )
        .await,
        1,
        "the row inserted past the frozen bound has its subtype row, written by the capture"
    );

    // after the run: rows copied by it change
    let copied = a_school_row(&f, 10).await;
    exec(
        &f,
        &format!("update projects set project_type = 'self_study', pace = 'intensive' where id = {copied}"),
    )
    .await;
    exec(&f, &format!("update projects set school_name = 'Clean Again High' where id = {dirty}")).await;
    exec(&f, &format!("update projects set grade = 99 where id = {late}")).await;
    let rewritten = a_school_row(&f, copied).await;
    exec(&f, &format!("update projects set school_name = 'Renamed High', grade = 2 where id = {rewritten}"))
        .await;
    exec(&f, &format!("update projects set title = 'only the title' where id = {rewritten}")).await;
    exec(&f, &NEW_ROW.replace("{id}", &(late + 1).to_string())).await;
    exec(&f, &format!("delete from projects where id = {moved}")).await;

    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok, "every write kept in step: {:?}", report.mismatched_ids);
    assert_eq!(
        count(&f.target, &format!("select count(*) from self_study_projects where project_id = {copied}"))
            .await,
        1
    );
    assert_eq!(
        count(&f.target, &format!("select count(*) from school_projects where project_id = {copied}")).await,
        0
    );
    assert_eq!(
        count(
            &f.target,
            &format!("select count(*) from sti_backfill_dead_letters where project_id = {late}")
        )
        .await,
        1,
        "a row turned dirty is a dead letter"
    );
    assert_eq!(
        count(
            &f.target,
            &format!("select count(*) from sti_backfill_dead_letters where project_id = {dirty}")
        )
        .await,
        0,
        "a row clean again is not"
    );
    assert_eq!(
        count(&f.target, &format!("select count(*) from school_projects where project_id = {rewritten} and school_name = 'Renamed High' and backfill_run_id = 0")).await,
        1,
    );

    // a rollback removes the capture first, then every row the run and the capture wrote
    let held =
        operate::begin(&f.control, &f.target, RunKind::Rollback, &start(500, 30_000), None).await.unwrap();
    assert!(!capture::installed(&f.target).await.unwrap(), "the rollback removed the capture");
    let rolled = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(rolled.state, RunState::Completed);
    assert_eq!(
        count(
            &f.target,
            "select (select count(*) from school_projects) + (select count(*) from self_study_projects)"
        )
        .await,
        0,
        "nothing the engine wrote is left"
    );
    exec(&f, &NEW_ROW.replace("{id}", &(late + 2).to_string())).await;
    assert_eq!(
        count(&f.target, "select count(*) from school_projects").await,
        0,
        "no capture after the rollback"
    );

    let entries = audit::recent(&f.control, None, 50).await.unwrap();
    for action in ["capture.install", "capture.remove"] {
        assert_eq!(entries.iter().filter(|e| e.action == action).count(), 1, "{action} audited once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_application_writes_keep_the_subtype_rows_in_step() {
    application_writes_keep_the_subtype_rows_in_step(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_application_writes_keep_the_subtype_rows_in_step() {
    application_writes_keep_the_subtype_rows_in_step(Backend::Postgres).await;
}

async fn installing_the_capture_twice_changes_nothing(backend: Backend) {
    let f = fixture(backend, 100).await;
    let timeout = std::time::Duration::from_secs(5);
    assert!(capture::install(&f.target, timeout).await.unwrap());
    assert!(!capture::install(&f.target, timeout).await.unwrap(), "already installed");
    exec(&f, &NEW_ROW.replace("{id}", "5000")).await;
    assert_eq!(
        count(&f.target, "select count(*) from school_projects where project_id = 5000").await,
        1,
        "once"
    );
    assert!(capture::remove(&f.target, timeout).await.unwrap());
    assert!(!capture::remove(&f.target, timeout).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_installing_the_capture_twice_changes_nothing() {
    installing_the_capture_twice_changes_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_installing_the_capture_twice_changes_nothing() {
    installing_the_capture_twice_changes_nothing(Backend::Postgres).await;
}

async fn runners_installing_the_capture_at_once_all_succeed(backend: Backend) {
    let f = fixture(backend, 100).await;
    let timeout = std::time::Duration::from_secs(5);
    // two runners starting at once both install it (the second one is refused its run later,
    // not its capture): a concurrent `create or replace function` must not fail either
    for round in 0..5 {
        let installs = futures::future::join_all((0..4).map(|_| capture::install(&f.target, timeout))).await;
        let installed_now = installs.iter().filter(|r| matches!(r, Ok(true))).count();
        assert!(installs.iter().all(Result::is_ok), "round {round}: {installs:?}");
        assert_eq!(installed_now, usize::from(round == 0), "round {round}: installed once, not by each");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runners_installing_the_capture_at_once_all_succeed() {
    runners_installing_the_capture_at_once_all_succeed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runners_installing_the_capture_at_once_all_succeed() {
    runners_installing_the_capture_at_once_all_succeed(Backend::Postgres).await;
}
