//! The engine under odd but ordinary conditions, as adversarial runs met them: sparse keys, a
//! flag switched under a rollback, a failed run, a row that turned dirty after its copy, an
//! operator request written while the runner acts on another, a lease that cannot be renewed —
//! on SQLite and PostgreSQL.

use crate::engine_runs::{count, fixture, run_backfill, start, wait_for_checkpoint, Fixture, DEV};
use crate::support::Backend;
use std::future::Future;
use std::time::Duration;
use sti_rollout::db::Dialect;
use sti_rollout::domain::pacing::Pacing;
use sti_rollout::domain::run::{RunKind, RunRequest, RunState};
use sti_rollout::engine::{backfill, dry_run, rollback, runs, verify, EngineError};

/// `work`, or a failure naming it when it takes over a minute (a run that walks key spans
/// instead of rows takes days).
async fn within_a_minute<T>(what: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .unwrap_or_else(|_| panic!("{what} took over a minute"))
}

pub(crate) async fn exec(f: &Fixture, sql: &str) {
    sqlx::query(sql).execute(f.target.pool()).await.unwrap();
}

pub(crate) async fn set_flag(f: &Fixture, on: bool) {
    sqlx::query("update flags set enabled = $1 where environment = 'dev'")
        .bind(on)
        .execute(f.control.pool())
        .await
        .unwrap();
}

async fn one_outlier_id_costs_one_row_not_a_span_of_keys(backend: Backend) {
    let f = fixture(backend, 1_000).await;
    exec(
        &f,
        "insert into projects (id, title, owner_id, project_type, school_name, grade, created_at, updated_at)
         values (1000000000000, 'outlier', 1, 'school', 'Far Away High', 7, '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')",
    )
    .await;

    let dry = within_a_minute(
        "the dry-run",
        dry_run::dry_run(&f.target, None, DEV, Pacing::parse(100, 0, None).unwrap(), None, &mut |_, _| {}),
    )
    .await
    .unwrap();
    assert_eq!(dry.rows_read, 1_001);
    assert!(dry.chunks <= 11, "{} chunks for 1 001 rows of 100", dry.chunks);

    let run = within_a_minute("the backfill", run_backfill(&f, 100)).await;
    assert_eq!(run.state, RunState::Completed);
    assert_eq!(run.rows_read, 1_001);
    // counted beside the first chunks: recorded by now, or very soon
    let mut expected = run.rows_expected;
    for _ in 0..50 {
        if expected.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        expected = runs::get(&f.target, run.id).await.unwrap().rows_expected;
    }
    assert_eq!(expected, Some(1_001), "progress counts rows, not the span of the keys");
    assert!(run.chunks <= 11, "{} chunks for 1 001 rows of 100", run.chunks);
    let ledger =
        count(&f.target, &format!("select count(*) from sti_backfill_chunks where run_id = {}", run.id))
            .await;
    assert_eq!(ledger, run.chunks);
    assert_eq!(
        count(&f.target, "select count(*) from school_projects where project_id = 1000000000000").await,
        1
    );

    let report = within_a_minute("the verification", verify::verify(&f.target, None, DEV, &mut |_, _| {}))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.ranges, 1, "1 001 rows are one range of 10 000");

    let held = rollback::begin(&f.target, &f.control, &start(100, 30_000)).await.unwrap();
    let undone = within_a_minute("the rollback", backfill::run(&f.target, None, DEV, held, &mut |_, _| {}))
        .await
        .unwrap();
    assert_eq!(undone.state, RunState::Completed);
    assert_eq!(undone.created(), run.created(), "deleted what the backfill created");
    assert!(
        undone.chunks <= 21,
        "{} chunks to delete about 1 000 rows, 100 of each table at a time",
        undone.chunks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_one_outlier_id_costs_one_row_not_a_span_of_keys() {
    one_outlier_id_costs_one_row_not_a_span_of_keys(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_outlier_id_costs_one_row_not_a_span_of_keys() {
    one_outlier_id_costs_one_row_not_a_span_of_keys(Backend::Postgres).await;
}

async fn a_rollback_stops_when_the_flag_goes_on_under_it(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    run_backfill(&f, 500).await;
    let backfilled = count(&f.target, "select count(*) from school_projects").await;
    let mut slow = start(100, 30_000);
    slow.pacing = Pacing::parse(100, 300, None).unwrap();
    let held = rollback::begin(&f.target, &f.control, &slow).await.unwrap();
    let mut observe = |_: &runs::RunRecord, _: Option<&backfill::ChunkOutcome>| {};
    let (ended, ()) =
        tokio::join!(backfill::run(&f.target, Some(&f.control), DEV, held, &mut observe), async {
            wait_for_checkpoint(&f.target, 1).await;
            // past the gate: an override, or someone in the control database
            set_flag(&f, true).await;
        });
    assert!(matches!(ended, Err(EngineError::FlagOn { .. })), "{ended:?}");
    let run = &runs::list(&f.target, 1).await.unwrap()[0];
    assert_eq!(run.state, RunState::Failed);
    assert!(run.error.as_deref().unwrap_or_default().contains("ENABLE_STI is on in dev"), "{:?}", run.error);
    let left = count(&f.target, "select count(*) from school_projects").await;
    assert!(left > 0 && left < backfilled, "it stopped part-way: {left} of {backfilled} rows left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_rollback_stops_when_the_flag_goes_on_under_it() {
    a_rollback_stops_when_the_flag_goes_on_under_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rollback_stops_when_the_flag_goes_on_under_it() {
    a_rollback_stops_when_the_flag_goes_on_under_it(Backend::Postgres).await;
}

/// How inserting the subtype row of legacy row 2500 fails.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The target refuses that row (a trigger raising): a poison row, isolated by splitting.
    Row,
    /// The target is broken (a function fails on PostgreSQL's missing table, on SQLite's
    /// malformed JSON — errors of the database, not of the row): the run fails.
    Broken,
}

/// Makes inserting the subtype row of legacy row 2500 fail, as a poison row or a broken
/// database would; `cure` removes it.
pub(crate) async fn poison_row_2500(f: &Fixture, refusal: Refusal) {
    exec(f, "update projects set project_type = 'school', school_name = 'Poison High', grade = 5, pace = null where id = 2500")
        .await;
    match f.target.dialect() {
        Dialect::Sqlite => {
            let body = match refusal {
                Refusal::Row => "select raise(abort, 'poison row 2500');",
                Refusal::Broken => "select json('{poison row 2500');",
            };
            exec(f, &format!("create trigger poison before insert on school_projects when new.project_id = 2500 begin {body} end"))
                .await
        }
        Dialect::Postgres => {
            let code = match refusal {
                Refusal::Row => "P0001",
                Refusal::Broken => "42P01",
            };
            exec(
                f,
                &format!("create or replace function poison() returns trigger language plpgsql as $$
                 begin if new.project_id = 2500 then raise exception 'poison row 2500' using errcode = '{code}'; end if; return new; end $$"),
            )
            .await;
            exec(f, "create trigger poison before insert on school_projects for each row execute function poison()")
                .await;
        }
    }
}

pub(crate) async fn cure(f: &Fixture) {
    match f.target.dialect() {
        Dialect::Sqlite => exec(f, "drop trigger poison").await,
        Dialect::Postgres => exec(f, "drop trigger poison on school_projects").await,
    }
}

/// A backfill run to its end, which must be a failure.
async fn failing_backfill(f: &Fixture) -> runs::RunRecord {
    let held = backfill::begin(&f.target, &start(1_000, 30_000)).await.unwrap();
    let error = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("poison row 2500") || message.contains("malformed JSON"), "{message}");
    runs::list(&f.target, 1).await.unwrap().remove(0)
}

async fn a_failed_run_is_continued_from_its_checkpoint_unless_restarted(backend: Backend) {
    let f = fixture(backend, 3_000).await;
    poison_row_2500(&f, Refusal::Broken).await;
    let failed = failing_backfill(&f).await;
    assert_eq!((failed.state, failed.checkpoint), (RunState::Failed, 2_000));
    cure(&f).await;

    let next = backfill::begin(&f.target, &start(1_000, 30_000)).await.unwrap();
    assert_ne!(next.run.id, failed.id, "a new run");
    assert_eq!((next.run.low_id, next.run.high_id), (2_000, 3_000), "after the failed run's checkpoint");
    let done = backfill::run(&f.target, Some(&f.control), DEV, next, &mut |_, _| {}).await.unwrap();
    assert_eq!((done.state, done.rows_read), (RunState::Completed, 1_000));
    let copied = count(&f.target, "select count(*) from school_projects").await
        + count(&f.target, "select count(*) from self_study_projects").await;
    assert_eq!(copied + failed.errors + done.errors, 3_000, "every row copied or rejected, none twice");

    // after a completed run a new one covers the whole range; after a failed one, --restart does
    exec(&f, "delete from school_projects where project_id = 2500").await;
    poison_row_2500(&f, Refusal::Broken).await;
    let failed_again = failing_backfill(&f).await;
    assert_eq!((failed_again.low_id, failed_again.checkpoint), (0, 2_000));
    cure(&f).await;
    let mut restart = start(1_000, 30_000);
    restart.resume_from = Some(0);
    let restarted = backfill::begin(&f.target, &restart).await.unwrap();
    assert_eq!(restarted.run.low_id, 0, "--restart: the whole range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_failed_run_is_continued_from_its_checkpoint_unless_restarted() {
    a_failed_run_is_continued_from_its_checkpoint_unless_restarted(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_failed_run_is_continued_from_its_checkpoint_unless_restarted() {
    a_failed_run_is_continued_from_its_checkpoint_unless_restarted(Backend::Postgres).await;
}

async fn a_row_that_turned_dirty_after_its_copy_is_rejected_by_both_engines(backend: Backend) {
    let f = fixture(backend, 1_000).await;
    run_backfill(&f, 1_000).await;
    let id = count(&f.target, "select min(project_id) from school_projects").await;
    // still in school_projects, but no longer a valid school row
    exec(&f, &format!("update projects set project_type = 'school', school_name = null where id = {id}"))
        .await;

    let mut held = backfill::begin(&f.target, &start(1, 30_000)).await.unwrap();
    held.run.checkpoint = id - 1;
    let rejected = count(&f.target, "select count(*) from sti_backfill_dead_letters").await;
    sqlx::query("update sti_backfill_runs set checkpoint = $1 where id = $2")
        .bind(id - 1)
        .bind(held.run.id)
        .execute(f.target.pool())
        .await
        .unwrap();
    let chunk = backfill::backfill_chunk(&f.target, &held, id - 1, id).await.unwrap();
    assert_eq!((chunk.rows_read, chunk.school_skipped, chunk.errors), (1, 1, 1), "{chunk:?}");
    let reason: String = sqlx::query_scalar(
        "select reason from sti_backfill_dead_letters where run_id = $1 and project_id = $2",
    )
    .bind(held.run.id)
    .bind(id)
    .fetch_one(f.target.pool())
    .await
    .unwrap();
    assert_eq!(reason, "missing_school_name");
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_dead_letters").await, rejected + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_row_that_turned_dirty_after_its_copy_is_rejected_by_both_engines() {
    a_row_that_turned_dirty_after_its_copy_is_rejected_by_both_engines(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_row_that_turned_dirty_after_its_copy_is_rejected_by_both_engines() {
    a_row_that_turned_dirty_after_its_copy_is_rejected_by_both_engines(Backend::Postgres).await;
}

async fn a_request_written_while_the_runner_acts_on_another_is_kept(backend: Backend) {
    let f = fixture(backend, 100).await;
    let mut held = backfill::begin(&f.target, &start(10, 30_000)).await.unwrap();
    assert_eq!(held.run.kind, RunKind::Backfill);
    runs::request(&f.target, held.run.id, RunRequest::Pause).await.unwrap();
    held.refresh(&f.target).await.unwrap();
    assert_eq!(held.run.requested, Some(RunRequest::Pause), "the runner read the pause");
    // between that read and the runner's write: the emergency stop
    runs::request(&f.target, held.run.id, RunRequest::Cancel).await.unwrap();
    held.transition(&f.target, RunState::Paused, None).await.unwrap();
    let run = runs::get(&f.target, held.run.id).await.unwrap();
    assert_eq!((run.state, run.requested), (RunState::Paused, Some(RunRequest::Cancel)));

    let ended = backfill::run(&f.target, None, DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(ended.state, RunState::Cancelled, "the cancel was acted on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_request_written_while_the_runner_acts_on_another_is_kept() {
    a_request_written_while_the_runner_acts_on_another_is_kept(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_request_written_while_the_runner_acts_on_another_is_kept() {
    a_request_written_while_the_runner_acts_on_another_is_kept(Backend::Postgres).await;
}

async fn a_run_whose_lease_cannot_be_renewed_is_marked_failed(backend: Backend) {
    let f = fixture(backend, 200).await;
    // a lease of 300 ms: a paused run renews it every 100 ms
    let held = backfill::begin(&f.target, &start(10, 300)).await.unwrap();
    let id = held.run.id;
    runs::request(&f.target, id, RunRequest::Pause).await.unwrap();
    // from now on every write to the paused run fails, but for a change of its state
    match f.target.dialect() {
        Dialect::Sqlite => {
            exec(
                &f,
                "create trigger no_renewal before update on sti_backfill_runs
                 when old.state = 'paused' and new.state = 'paused'
                 begin select raise(abort, 'disk I/O error'); end",
            )
            .await
        }
        Dialect::Postgres => {
            exec(
                &f,
                "create function no_renewal() returns trigger language plpgsql as $$
                 begin if old.state = 'paused' and new.state = 'paused' then raise exception 'disk I/O error'; end if;
                 return new; end $$",
            )
            .await;
            exec(&f, "create trigger no_renewal before update on sti_backfill_runs for each row execute function no_renewal()")
                .await;
        }
    }
    let ended =
        within_a_minute("the paused run", backfill::run(&f.target, None, DEV, held, &mut |_, _| {})).await;
    assert!(ended.unwrap_err().to_string().contains("disk I/O error"));
    let run = runs::get(&f.target, id).await.unwrap();
    assert_eq!(run.state, RunState::Failed, "not left {} while its runner is gone", run.state);
    assert!(run.error.as_deref().unwrap_or_default().contains("disk I/O error"), "{:?}", run.error);
    assert!(runs::active(&f.target).await.unwrap().is_none(), "the active slot is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_run_whose_lease_cannot_be_renewed_is_marked_failed() {
    a_run_whose_lease_cannot_be_renewed_is_marked_failed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_whose_lease_cannot_be_renewed_is_marked_failed() {
    a_run_whose_lease_cannot_be_renewed_is_marked_failed(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_row_with_a_chunk_size_of_0_fails_instead_of_looping() {
    let f = fixture(Backend::Sqlite, 100).await;
    let held = backfill::begin(&f.target, &start(10, 30_000)).await.unwrap();
    exec(&f, &format!("update sti_backfill_runs set chunk_size = 0 where id = {}", held.run.id)).await;
    let ended = within_a_minute("the run", backfill::run(&f.target, None, DEV, held, &mut |_, _| {})).await;
    let error = ended.unwrap_err().to_string();
    assert!(error.contains("pacing that is not valid"), "{error}");
}

async fn verify_compares_every_copied_column_of_every_id(backend: Backend) {
    let f = fixture(backend, 1_000).await;
    for id in [-5, 0] {
        exec(
            &f,
            &format!(
                "insert into projects (id, title, owner_id, project_type, school_name, grade, created_at, updated_at)
                 values ({id}, 'not positive', 1, 'school', 'Zero High', 3, '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')"
            ),
        )
        .await;
    }
    let run = run_backfill(&f, 300).await;
    assert_eq!(run.rows_read, 1_002, "ids 0 and -5 are legacy rows too");
    assert_eq!(count(&f.target, "select count(*) from school_projects where project_id <= 0").await, 2);
    let clean = verify::verify(&f.target, None, DEV, &mut |_, _| {}).await.unwrap();
    assert!(clean.ok, "{clean:?}");

    let last = count(&f.target, "select max(project_id) from school_projects").await;
    exec(
        &f,
        &format!("update school_projects set created_at = '2000-01-01T00:00:00Z' where project_id = {last}"),
    )
    .await;
    exec(&f, "delete from school_projects where project_id = -5").await;
    let report = verify::verify(&f.target, None, DEV, &mut |_, _| {}).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.mismatched_ids, vec![-5, last], "a missing row with id -5, a different created_at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_verify_compares_every_copied_column_of_every_id() {
    verify_compares_every_copied_column_of_every_id(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_compares_every_copied_column_of_every_id() {
    verify_compares_every_copied_column_of_every_id(Backend::Postgres).await;
}

async fn the_application_deletes_a_backfilled_project_with_plain_sql(backend: Backend) {
    let f = fixture(backend, 500).await;
    run_backfill(&f, 500).await;
    let school = count(&f.target, "select min(project_id) from school_projects").await;
    let self_study = count(&f.target, "select min(project_id) from self_study_projects").await;
    // an application that knows only the legacy table
    exec(&f, &format!("delete from projects where id in ({school}, {self_study})")).await;
    assert_eq!(
        count(&f.target, &format!("select count(*) from school_projects where project_id = {school}")).await
            + count(
                &f.target,
                &format!("select count(*) from self_study_projects where project_id = {self_study}")
            )
            .await,
        0,
        "their subtype rows went with them"
    );
    assert!(verify::verify(&f.target, None, DEV, &mut |_, _| {}).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_application_deletes_a_backfilled_project_with_plain_sql() {
    the_application_deletes_a_backfilled_project_with_plain_sql(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_application_deletes_a_backfilled_project_with_plain_sql() {
    the_application_deletes_a_backfilled_project_with_plain_sql(Backend::Postgres).await;
}

/// A runner whose machine's clock runs two minutes ahead sees every lease as expired by its own
/// clock: leases are decided by the database's clock, so it cannot take over a live run.
async fn a_runner_with_a_wrong_clock_cannot_take_a_live_lease(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    let held = backfill::begin(&f.target, &start(100, 30_000)).await.unwrap();
    let mut vars = crate::support::config_vars(&f.config);
    vars.insert("STI_CLOCK_SKEW_MS".into(), "120000".into());

    let output = crate::support::cli(&["backfill", "--env", "dev", "--json"], &vars);
    let err = crate::support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("run #{} is already active", held.run.id)), "{err}");
    let run = runs::get(&f.target, held.run.id).await.unwrap();
    assert_eq!(run.fencing_token, held.token, "not taken over");
    assert_eq!(run.checkpoint, held.run.checkpoint, "and nothing copied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_runner_with_a_wrong_clock_cannot_take_a_live_lease() {
    a_runner_with_a_wrong_clock_cannot_take_a_live_lease(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_runner_with_a_wrong_clock_cannot_take_a_live_lease() {
    a_runner_with_a_wrong_clock_cannot_take_a_live_lease(Backend::Postgres).await;
}

/// A run ended under its runner (by hand, or by a console that ended it as gone) keeps that
/// end: the runner's next chunk and its own end are fenced by state and slot, not only by token.
async fn a_run_ended_under_its_runner_takes_no_more_writes(backend: Backend) {
    let f = fixture(backend, 1_000).await;
    let mut held = backfill::begin(&f.target, &start(100, 30_000)).await.unwrap();
    exec(&f, "update sti_backfill_runs set state = 'cancelled', active_slot = null, finished_at = 1").await;

    let from = held.run.checkpoint;
    let refused = backfill::backfill_chunk(&f.target, &held, from, from + 100).await.unwrap_err();
    assert!(matches!(refused, EngineError::LeaseLost { .. }), "{refused}");
    assert_eq!(count(&f.target, "select count(*) from school_projects").await, 0);
    assert_eq!(count(&f.target, "select count(*) from self_study_projects").await, 0);

    let refused = held.transition(&f.target, RunState::Completed, None).await.unwrap_err();
    assert!(matches!(refused, EngineError::LeaseLost { .. }), "{refused}");
    assert_eq!(runs::get(&f.target, held.run.id).await.unwrap().state, RunState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_run_ended_under_its_runner_takes_no_more_writes() {
    a_run_ended_under_its_runner_takes_no_more_writes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_ended_under_its_runner_takes_no_more_writes() {
    a_run_ended_under_its_runner_takes_no_more_writes(Backend::Postgres).await;
}

/// The size an adaptive run has reached is in its row, so a runner taking over starts from it
/// (and the console shows it) instead of from the size the run began with.
async fn an_adapted_chunk_size_is_kept_in_the_run(backend: Backend) {
    let f = fixture(backend, 20_000).await;
    let mut adaptive = start(100, 30_000);
    adaptive.pacing = Pacing::parse(100, 0, Some(5_000)).unwrap(); // far above any chunk's time here
    let held = backfill::begin(&f.target, &adaptive).await.unwrap();
    let run = backfill::run(&f.target, None, DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(run.state, RunState::Completed);
    assert!(run.pacing.chunk_size > 100, "the run row still says {}", run.pacing.chunk_size);
    assert!(run.chunks < 200, "{} chunks: the size grew", run.chunks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_adapted_chunk_size_is_kept_in_the_run() {
    an_adapted_chunk_size_is_kept_in_the_run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_adapted_chunk_size_is_kept_in_the_run() {
    an_adapted_chunk_size_is_kept_in_the_run(Backend::Postgres).await;
}

/// A runner killed on this host leaves a lease of 30 s; its process is visibly gone, so the next
/// `backfill` takes the run over at once instead of refusing it until the lease runs out.
async fn a_run_whose_runner_died_on_this_host_is_taken_over_at_once(backend: Backend) {
    let f = fixture(backend, 20_000).await;
    let vars = crate::support::config_vars(&f.config);
    let mut child = crate::support::spawn_cli(
        &["backfill", "--env", "dev", "--chunk", "100", "--pause-ms", "50", "--lease-seconds", "30"],
        &vars,
    );
    wait_for_checkpoint(&f.target, 300).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let output = crate::support::cli(&["backfill", "--env", "dev", "--chunk", "5000", "--json"], &vars);
    let err = crate::support::stderr(&output);
    assert!(output.status.success(), "refused with the holder gone: {err}");
    let summary: serde_json::Value = serde_json::from_str(crate::support::stdout(&output).trim()).unwrap();
    assert_eq!(summary["run_id"], 1);
    assert_eq!(summary["state"], "completed");
    assert_eq!(runs::get(&f.target, 1).await.unwrap().fencing_token, 2, "taken over once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_run_whose_runner_died_on_this_host_is_taken_over_at_once() {
    a_run_whose_runner_died_on_this_host_is_taken_over_at_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_whose_runner_died_on_this_host_is_taken_over_at_once() {
    a_run_whose_runner_died_on_this_host_is_taken_over_at_once(Backend::Postgres).await;
}
