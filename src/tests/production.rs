//! The engine as production meets it (issue 28): an application connected as its own
//! least-privilege role, writing while a backfill runs; its own rules on the subtype tables;
//! its plain dual writes; its id changes; runs of one kind after a failed run of another.

use crate::engine_defects::{exec, set_flag};
use crate::engine_runs::{count, fixture, run_backfill, start, wait_for_checkpoint, Fixture, DEV};
use crate::support::Backend;
use sti_rollout::db::{Database, DatabaseUrl, Dialect};
use sti_rollout::domain::pacing::Pacing;
use sti_rollout::domain::run::{RunKind, RunRequest, RunState};
use sti_rollout::engine::{backfill, operate, reconcile, rollback, runs, verify, EngineError};

/// What the application may do on PostgreSQL: what STI needs on the legacy and subtype
/// tables, and nothing on the engine's.
const APPLICATION_GRANTS: &str =
    "grant select, insert, update, delete on projects, school_projects, self_study_projects to {role}";

/// The application's connection: on PostgreSQL a role of its own with [`APPLICATION_GRANTS`]
/// only; on SQLite (no roles) the same file.
pub(crate) async fn application(f: &Fixture) -> Database {
    let url = f.config.targets[DEV].url.expose().to_owned();
    if f.target.dialect() != Dialect::Postgres {
        return Database::connect(&DatabaseUrl::parse(&url).unwrap()).await.unwrap();
    }
    let database: String = sqlx::query_scalar("select cast(current_database() as text)")
        .fetch_one(f.target.pool())
        .await
        .unwrap();
    let role = format!("app_{database}");
    exec(f, &format!("create role {role} login")).await;
    exec(f, &APPLICATION_GRANTS.replace("{role}", &role)).await;
    let url = url.replacen("postgres@", &format!("{role}@"), 1);
    assert!(url.contains(&role), "the test cluster's URL names its user: {url}");
    Database::connect(&DatabaseUrl::parse(&url).unwrap()).await.unwrap()
}

async fn app_exec(app: &Database, sql: &str) -> Result<(), String> {
    sqlx::query(sql).execute(app.pool()).await.map(|_| ()).map_err(|e| format!("{sql}: {e}"))
}

fn new_school_row(id: i64, school: &str, grade: i64) -> String {
    format!(
        "insert into projects (id, title, owner_id, project_type, school_name, grade, pace, goal_date, created_at, updated_at)
         values ({id}, 'app', 7, 'school', '{school}', {grade}, null, null, '2024-06-01T00:00:00Z', '2024-06-01T00:00:00Z')"
    )
}

/// Inserts, re-identifying updates, title updates and deletes, as the application makes them,
/// `rounds` times; every error the application met.
async fn traffic(app: Database, first_new_id: i64, rounds: i64) -> Vec<String> {
    let mut errors = Vec::new();
    for i in 0..rounds {
        let id = first_new_id + i;
        let old = 1 + (i * 7) % 1_900;
        for sql in [
            new_school_row(id, "Traffic High", 1 + i % 13),
            format!("update projects set project_type = 'self-study', school_name = null, grade = null, pace = 'regular' where id = {id}"),
            // an upsert that updates: on SQLite its conflict policy reaches into the capture's
            // triggers
            format!(
                "insert into projects (id, title, owner_id, project_type, school_name, grade, pace, goal_date, created_at, updated_at)
                 values ({id}, 'app', 7, 'self_study', null, null, 'intensive', null, '2024-06-01T00:00:00Z', '2024-06-01T00:00:00Z')
                 on conflict (id) do update set pace = excluded.pace"
            ),
            format!("update projects set title = 'renamed {i}' where id = {old}"),
            format!("update projects set school_name = 'Moved High', project_type = 'school', pace = null where id = {}", old + 1),
            format!("delete from projects where id = {}", old + 2),
        ] {
            if let Err(e) = app_exec(&app, &sql).await {
                errors.push(e);
            }
        }
    }
    errors
}

async fn the_application_writes_as_its_own_role_through_a_live_backfill(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    let app = application(&f).await;
    let mut slow = start(100, 30_000);
    slow.pacing = Pacing::parse(100, 20, None).unwrap();
    let held = operate::begin(&f.control, &f.target, RunKind::Backfill, &slow, None).await.unwrap();
    let writes = tokio::spawn(traffic(app.clone(), 50_000, 60));
    let done = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    let errors = writes.await.unwrap();
    assert!(errors.is_empty(), "the application's writes failed: {errors:#?}");
    // after the run too, with the capture installed
    let errors = traffic(app.clone(), 60_000, 10).await;
    assert!(errors.is_empty(), "the application's writes failed after the run: {errors:#?}");
    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok, "every write kept in step: {:?}", report.mismatched_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_application_writes_through_a_live_backfill() {
    the_application_writes_as_its_own_role_through_a_live_backfill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_application_writes_as_its_own_role_through_a_live_backfill() {
    the_application_writes_as_its_own_role_through_a_live_backfill(Backend::Postgres).await;
}

/// The application's own rules on `school_projects`: PostgreSQL a check and a trigger, SQLite
/// (whose triggers can abort but not be caught) a unique index.
async fn add_application_rules(f: &Fixture) {
    match f.target.dialect() {
        Dialect::Postgres => {
            exec(f, "alter table school_projects add constraint app_no_closed_schools check (school_name <> 'Closed High') not valid").await;
            exec(
                f,
                "create function app_guard() returns trigger language plpgsql as $$
                 begin
                    if new.grade = 13 then raise exception 'grade 13 is not offered here'; end if;
                    return new;
                 end $$",
            )
            .await;
            exec(f, "create trigger app_guard before insert or update on school_projects for each row execute function app_guard()").await;
        }
        Dialect::Sqlite => {
            exec(f, "create unique index app_one_closed_school on school_projects (school_name) where school_name = 'Closed High'").await;
        }
    }
}

async fn the_applications_rules_make_dead_letters_not_failed_writes(backend: Backend) {
    let f = fixture(backend, 500).await;
    let app = application(&f).await;
    let held =
        operate::begin(&f.control, &f.target, RunKind::Backfill, &start(100, 30_000), None).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    add_application_rules(&f).await;
    let mut refused = vec![(90_001, new_school_row(90_001, "Closed High", 4))];
    match backend {
        Backend::Postgres => refused.push((90_002, new_school_row(90_002, "Open High", 13))),
        // the first closed school is taken, the second breaks the index
        Backend::Sqlite => refused.push((90_002, new_school_row(90_002, "Closed High", 5))),
    }
    for (_, sql) in &refused {
        app_exec(&app, sql).await.unwrap();
    }
    let refused_id = refused.last().unwrap().0;
    assert_eq!(count(&f.target, &format!("select count(*) from projects where id = {refused_id}")).await, 1);
    assert_eq!(
        count(&f.target, &format!("select count(*) from school_projects where project_id = {refused_id}"))
            .await,
        0
    );
    let reason: String =
        sqlx::query_scalar("select reason from sti_backfill_dead_letters where project_id = $1")
            .bind(refused_id)
            .fetch_one(f.target.pool())
            .await
            .unwrap();
    assert!(reason.starts_with(backfill::REFUSED_PREFIX), "{reason}");
    if backend == Backend::Postgres {
        assert!(reason.contains("grade 13 is not offered here"), "the target's own words: {reason}");
        let closed: String =
            sqlx::query_scalar("select reason from sti_backfill_dead_letters where project_id = 90001")
                .fetch_one(f.target.pool())
                .await
                .unwrap();
        assert!(closed.contains("app_no_closed_schools"), "{closed}");
    }
    // an update the rules refuse stands as well, and a delete of a refused row clears it
    let copied: i64 = count(&f.target, "select min(project_id) from school_projects").await;
    let update = match backend {
        Backend::Postgres => format!("update projects set grade = 13 where id = {copied}"),
        Backend::Sqlite => format!("update projects set school_name = 'Closed High' where id = {copied}"),
    };
    app_exec(&app, &update).await.unwrap();
    assert_eq!(
        count(
            &f.target,
            &format!("select count(*) from sti_backfill_dead_letters where project_id = {copied}")
        )
        .await,
        1,
        "the refused update is a dead letter"
    );
    app_exec(&app, &format!("delete from projects where id = {refused_id}")).await.unwrap();
    assert_eq!(
        count(
            &f.target,
            &format!("select count(*) from sti_backfill_dead_letters where project_id = {refused_id}")
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_applications_rules_make_dead_letters_not_failed_writes() {
    the_applications_rules_make_dead_letters_not_failed_writes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_applications_rules_make_dead_letters_not_failed_writes() {
    the_applications_rules_make_dead_letters_not_failed_writes(Backend::Postgres).await;
}

async fn a_plain_dual_write_wins_over_the_capture(backend: Backend) {
    let f = fixture(backend, 300).await;
    let app = application(&f).await;
    let held =
        operate::begin(&f.control, &f.target, RunKind::Backfill, &start(100, 30_000), None).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    let subtype_row = |id: i64, conflict: &str| {
        format!(
            "insert into school_projects (project_id, school_name, grade, backfill_run_id, created_at)
             values ({id}, 'Own Row High', 4, null, '2024-06-01T00:00:00Z'){conflict}"
        )
    };
    for (id, conflict) in
        [(70_001, ""), (70_002, " on conflict (project_id) do update set school_name = excluded.school_name")]
    {
        let mut tx = app.pool().begin().await.unwrap();
        sqlx::query(&new_school_row(id, "Own Row High", 4)).execute(&mut *tx).await.unwrap();
        sqlx::query(&subtype_row(id, conflict))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("the application's own subtype row{conflict}: {e}"));
        tx.commit().await.unwrap();
        assert_eq!(
            count(
                &f.target,
                &format!("select count(*) from school_projects where project_id = {id} and backfill_run_id is null")
            )
            .await,
            1,
            "the application's row stands, with its own provenance"
        );
    }
    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok, "{:?}", report.mismatched_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_plain_dual_write_wins_over_the_capture() {
    a_plain_dual_write_wins_over_the_capture(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_plain_dual_write_wins_over_the_capture() {
    a_plain_dual_write_wins_over_the_capture(Backend::Postgres).await;
}

async fn the_application_changes_a_projects_id(backend: Backend) {
    let f = fixture(backend, 300).await;
    let app = application(&f).await;
    // backfilled rows without the capture (a CLI backfill installs none), then with it
    run_backfill(&f, 100).await;
    let moved: i64 = count(&f.target, "select min(project_id) from school_projects").await;
    app_exec(&app, &format!("update projects set id = 80001 where id = {moved}")).await.unwrap();
    let held =
        operate::begin(&f.control, &f.target, RunKind::Backfill, &start(100, 30_000), None).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    let again: i64 = count(&f.target, "select min(project_id) from school_projects").await;
    app_exec(&app, &format!("update projects set id = 80002 where id = {again}")).await.unwrap();
    for (from, to) in [(moved, 80_001), (again, 80_002)] {
        assert_eq!(
            count(&f.target, &format!("select count(*) from school_projects where project_id = {to}")).await,
            1,
            "the subtype row moved with its project"
        );
        assert_eq!(
            count(&f.target, &format!("select count(*) from school_projects where project_id = {from}"))
                .await,
            0
        );
    }
    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok, "{:?}", report.mismatched_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_application_changes_a_projects_id() {
    the_application_changes_a_projects_id(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_application_changes_a_projects_id() {
    the_application_changes_a_projects_id(Backend::Postgres).await;
}

/// Rows a backfill or the capture wrote, what a rollback deletes.
async fn engine_rows(f: &Fixture) -> i64 {
    count(
        &f.target,
        "select (select count(*) from school_projects where backfill_run_id is not null)
              + (select count(*) from self_study_projects where backfill_run_id is not null)",
    )
    .await
}

/// Legacy rows identification takes, what a complete backfill leaves with a subtype row.
async fn clean_rows(f: &Fixture) -> i64 {
    let all = count(&f.target, "select count(*) from projects").await;
    let dirty = count(&f.target, "select count(distinct project_id) from sti_backfill_dead_letters").await;
    all - dirty
}

async fn split_rows(f: &Fixture) -> i64 {
    count(
        &f.target,
        "select (select count(*) from school_projects) + (select count(*) from self_study_projects)",
    )
    .await
}

/// Runs a rollback and makes it fail part-way (the flag goes on under it).
async fn a_failed_rollback(f: &Fixture) {
    let mut slow = start(100, 30_000);
    slow.pacing = Pacing::parse(100, 200, None).unwrap();
    let held = rollback::begin(&f.target, &f.control, &slow).await.unwrap();
    let low = held.run.low_id;
    let mut observe = |_: &runs::RunRecord, _: Option<&backfill::ChunkOutcome>| {};
    let (ended, ()) =
        tokio::join!(backfill::run(&f.target, Some(&f.control), DEV, held, &mut observe), async {
            wait_for_checkpoint(&f.target, low + 300).await;
            set_flag(f, true).await;
        });
    assert!(matches!(ended, Err(EngineError::FlagOn { .. })), "{ended:?}");
    set_flag(f, false).await;
}

async fn a_rollback_after_a_failed_rollback_and_a_backfill_deletes_everything(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    run_backfill(&f, 200).await;
    a_failed_rollback(&f).await;
    assert!(engine_rows(&f).await > 0, "the failed rollback left rows");
    run_backfill(&f, 200).await;
    let held = rollback::begin(&f.target, &f.control, &start(200, 30_000)).await.unwrap();
    let done = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    assert_eq!(engine_rows(&f).await, 0, "a completed rollback leaves no backfilled row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_rollback_after_a_failed_rollback_and_a_backfill_deletes_everything() {
    a_rollback_after_a_failed_rollback_and_a_backfill_deletes_everything(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rollback_after_a_failed_rollback_and_a_backfill_deletes_everything() {
    a_rollback_after_a_failed_rollback_and_a_backfill_deletes_everything(Backend::Postgres).await;
}

/// Runs a backfill and ends it failed part-way (as a runner's fatal error would).
async fn a_failed_backfill(f: &Fixture) {
    let mut slow = start(100, 30_000);
    slow.pacing = Pacing::parse(100, 100, None).unwrap();
    let held = backfill::begin(&f.target, &slow).await.unwrap();
    let (low, id) = (held.run.low_id, held.run.id);
    let mut observe = |_: &runs::RunRecord, _: Option<&backfill::ChunkOutcome>| {};
    let (ended, ()) = tokio::join!(backfill::run(&f.target, None, DEV, held, &mut observe), async {
        wait_for_checkpoint(&f.target, low + 500).await;
        exec(
            f,
            &format!(
                "update sti_backfill_runs set state = 'failed', active_slot = null, error = 'killed' where id = {id}"
            ),
        )
        .await;
    });
    // ended under it: the runner sees it at its next turn, or its chunk in flight is refused
    assert!(
        matches!(&ended, Ok(run) if run.state == RunState::Failed)
            || matches!(ended, Err(EngineError::LeaseLost { .. })),
        "{ended:?}"
    );
    assert_eq!(runs::get(&f.target, id).await.unwrap().state, RunState::Failed);
}

async fn a_backfill_after_a_failed_backfill_and_a_rollback_copies_everything(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    a_failed_backfill(&f).await;
    let held = rollback::begin(&f.target, &f.control, &start(200, 30_000)).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(split_rows(&f).await, 0);
    let done = run_backfill(&f, 200).await;
    assert_eq!(done.state, RunState::Completed);
    assert_eq!(split_rows(&f).await, clean_rows(&f).await, "a completed backfill split every clean row");
    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok, "{:?}", report.mismatched_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_backfill_after_a_failed_backfill_and_a_rollback_copies_everything() {
    a_backfill_after_a_failed_backfill_and_a_rollback_copies_everything(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_backfill_after_a_failed_backfill_and_a_rollback_copies_everything() {
    a_backfill_after_a_failed_backfill_and_a_rollback_copies_everything(Backend::Postgres).await;
}

async fn a_run_whose_checkpoint_jumped_is_not_completed(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    let mut slow = start(100, 30_000);
    slow.pacing = Pacing::parse(100, 100, None).unwrap();
    let held = backfill::begin(&f.target, &slow).await.unwrap();
    let (low, high, id) = (held.run.low_id, held.run.high_id, held.run.id);
    let mut observe = |_: &runs::RunRecord, _: Option<&backfill::ChunkOutcome>| {};
    let (ended, ()) = tokio::join!(backfill::run(&f.target, None, DEV, held, &mut observe), async {
        wait_for_checkpoint(&f.target, low + 300).await;
        // a hand-edited run row, say, while the run is paused (a chunk in flight would find
        // its checkpoint moved and stop as taken over)
        runs::request(&f.target, id, RunRequest::Pause).await.unwrap();
        while runs::get(&f.target, id).await.unwrap().state != RunState::Paused {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        exec(&f, &format!("update sti_backfill_runs set checkpoint = {high} where id = {id}")).await;
        runs::request(&f.target, id, RunRequest::Resume).await.unwrap();
    });
    let error = ended.expect_err("a run that skipped rows is not completed");
    assert!(error.to_string().contains("it is not complete"), "{error}");
    let run = runs::get(&f.target, id).await.unwrap();
    assert_eq!(run.state, RunState::Failed);
    assert!(run.checkpoint < high, "the checkpoint goes back before the first missed row");
    let again = run_backfill(&f, 200).await;
    assert_eq!(again.state, RunState::Completed);
    assert_eq!(split_rows(&f).await, clean_rows(&f).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_run_whose_checkpoint_jumped_is_not_completed() {
    a_run_whose_checkpoint_jumped_is_not_completed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_whose_checkpoint_jumped_is_not_completed() {
    a_run_whose_checkpoint_jumped_is_not_completed(Backend::Postgres).await;
}

async fn the_mirror_catches_up_by_itself_after_the_control_database_was_away(backend: Backend) {
    let f = fixture(backend, 1_000).await;
    let _app = crate::support::TestApp::start(&f.config).await;
    // a run the control database never heard of: it was away while the run went on and ended
    let held = backfill::begin(&f.target, &start(200, 30_000)).await.unwrap();
    let done = backfill::run(&f.target, None, DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    let mirrored = format!(
        "select count(*) from runs where environment = 'dev' and run_id = {} and state = 'completed'",
        done.id
    );
    for _ in 0..100 {
        if count(&f.control, &mirrored).await == 1 {
            assert_eq!(
                count(
                    &f.control,
                    &format!(
                        "select count(*) from run_chunks where environment = 'dev' and run_id = {}",
                        done.id
                    )
                )
                .await,
                done.chunks,
                "its ledger too"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the console's mirror never learned that run #{} completed", done.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_mirror_catches_up_by_itself_after_the_control_database_was_away() {
    the_mirror_catches_up_by_itself_after_the_control_database_was_away(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_mirror_catches_up_by_itself_after_the_control_database_was_away() {
    the_mirror_catches_up_by_itself_after_the_control_database_was_away(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrate_plan_names_the_grants_each_role_lacks() {
    use crate::support::{cli, config_vars, stdout};
    let f = fixture(Backend::Postgres, 100).await;
    let database: String = sqlx::query_scalar("select cast(current_database() as text)")
        .fetch_one(f.target.pool())
        .await
        .unwrap();
    // an application role that may write projects but only read the subtype tables, and one
    // with what it needs
    let partial = format!("partial_{database}");
    exec(&f, &format!("create role {partial} login")).await;
    exec(&f, &format!("grant select, insert, update, delete on projects to {partial}")).await;
    exec(&f, &format!("grant select on school_projects, self_study_projects to {partial}")).await;
    application(&f).await.close().await;
    let vars = config_vars(&f.config);
    let output = cli(&["migrate", "--env", "dev", "--plan"], &vars);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "grants: the application's role {partial} writes projects but not both subtype tables"
        )),
        "{out}"
    );
    assert!(!out.contains(&format!("app_{database} writes")), "the role with its grants is not named: {out}");
    assert!(!out.contains("nothing to do"), "{out}");

    // the engine connected as a role that owns nothing and may only read projects
    let engine = format!("engine_{database}");
    exec(&f, &format!("create role {engine} login")).await;
    exec(&f, &format!("grant select on projects to {engine}")).await;
    let mut vars = vars;
    let url = vars["STI_DEV_URL"].replacen("postgres@", &format!("{engine}@"), 1);
    vars.insert("STI_DEV_URL".into(), url);
    let out = stdout(&cli(&["migrate", "--env", "dev", "--plan"], &vars));
    for lack in [
        format!("the engine's role {engine} does not own projects (owner: postgres)"),
        format!("the engine's role {engine} does not own school_projects"),
        format!("the engine's role {engine} does not own sti_backfill_runs"),
    ] {
        assert!(out.contains(&lack), "{lack}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_cascading_keys_migration_runs_under_an_installed_capture() {
    use sti_rollout::db::Schema;
    use sti_rollout::engine::capture;
    let f = fixture(Backend::Sqlite, 200).await;
    let held =
        operate::begin(&f.control, &f.target, RunKind::Backfill, &start(100, 30_000), None).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    // a target from before the migration, mid-rollout: the capture's triggers name the tables
    // the migration rebuilds
    exec(&f, "delete from _sqlx_migrations where version = 20261207000001").await;
    let reopened = Database::open(&f.config.targets[DEV].url, Schema::Target).await.unwrap();
    capture::refresh(&reopened).await;
    assert_eq!(
        count(
            &reopened,
            "select count(*) from sqlite_master where type = 'trigger' and name like 'sti_capture_%'"
        )
        .await,
        6,
        "the capture is whole again"
    );
    let mut tx = reopened.pool().begin().await.unwrap();
    sqlx::query(&new_school_row(70_001, "Own Row High", 4)).execute(&mut *tx).await.unwrap();
    sqlx::query(
        "insert into school_projects (project_id, school_name, grade, backfill_run_id, created_at)
         values (70001, 'Own Row High', 4, null, '2024-06-01T00:00:00Z')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let report = verify::verify(&reopened, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok, "{:?}", report.mismatched_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_the_engine_runs_as_the_owner_of_the_tables_not_a_superuser() {
    let f = fixture(Backend::Postgres, 2_000).await;
    let app = application(&f).await;
    let database: String = sqlx::query_scalar("select cast(current_database() as text)")
        .fetch_one(f.target.pool())
        .await
        .unwrap();
    // the role that runs the application's migrations: it owns the tables, nothing more
    let owner = format!("owner_{database}");
    exec(&f, &format!("create role {owner} login")).await;
    exec(&f, &format!("grant create on schema public to {owner}")).await;
    exec(
        &f,
        &format!(
            "do $$ declare t record; begin
                for t in select tablename from pg_tables where schemaname = 'public' loop
                    execute format('alter table %I owner to {owner}', t.tablename);
                end loop;
             end $$"
        ),
    )
    .await;
    let url = f.config.targets[DEV].url.expose().replacen("postgres@", &format!("{owner}@"), 1);
    let engine = Database::connect(&DatabaseUrl::parse(&url).unwrap()).await.unwrap();
    assert!(sti_rollout::db::target_schema::grants::missing(&engine).await.unwrap().is_empty());

    // a live backfill (the capture installed), the application writing as its own role
    let held =
        operate::begin(&f.control, &engine, RunKind::Backfill, &start(200, 30_000), None).await.unwrap();
    let writes = tokio::spawn(traffic(app.clone(), 50_000, 20));
    let done = backfill::run(&engine, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    assert!(writes.await.unwrap().is_empty());
    // deferred validation drops and restores the keys as that role
    let deferred = backfill::Start { defer_fks: true, ..start(500, 30_000) };
    let held = operate::begin(
        &f.control,
        &engine,
        RunKind::Backfill,
        &backfill::Start { resume_from: Some(0), ..deferred },
        None,
    )
    .await
    .unwrap();
    let done = backfill::run(&engine, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed, "{:?}", done.error);
    assert!(done.fk_validation_ms.is_some());
    // and a rollback removes the capture
    let held =
        operate::begin(&f.control, &engine, RunKind::Rollback, &start(500, 30_000), None).await.unwrap();
    let rolled = backfill::run(&engine, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(rolled.state, RunState::Completed);
    assert!(!sti_rollout::engine::capture::installed(&engine).await.unwrap());
    assert_eq!(engine_rows(&f).await, 0);
}

/// ids at both ends of `i64`: −2^63 (below which an exclusive lower bound has nothing), the id
/// after it, and 2^63 − 1; copied in chunks of one row (and by two workers on PostgreSQL),
/// counted by a dry run, seen by verify, removed by a rollback.
async fn every_id_of_i64_is_covered_the_least_included(backend: Backend) {
    let f = fixture(backend, 20).await;
    let ends = [i64::MIN, i64::MIN + 1, i64::MAX];
    for id in ends {
        exec(&f, &new_school_row(id, "Edge High", 4)).await;
    }
    let in_subtypes = |id: i64| format!("select count(*) from school_projects where project_id = {id}");
    let dry = sti_rollout::engine::dry_run::dry_run(
        &f.target,
        None,
        DEV,
        Pacing::parse(1, 0, None).unwrap(),
        None,
        &mut |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(dry.rows_read, 23, "the dry run reads every row: {dry:?}");

    let mut one_by_one = start(1, 30_000);
    if backend == Backend::Postgres {
        one_by_one.workers = 2;
    }
    let held = backfill::begin(&f.target, &one_by_one).await.unwrap();
    let done = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    for id in ends {
        assert_eq!(count(&f.target, &in_subtypes(id)).await, 1, "id {id} was split");
    }
    assert_eq!(split_rows(&f).await, clean_rows(&f).await, "a completed backfill split every clean row");
    let clean = verify::verify(&f.target, None, DEV, &mut |_, _| {}).await.unwrap();
    assert!(clean.ok, "{clean:?}");

    exec(&f, &format!("delete from school_projects where project_id = {}", i64::MIN)).await;
    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert_eq!(report.mismatched_ids, vec![i64::MIN], "verify sees the least id too");
    let plan = reconcile::plan(&f.control, &f.target, DEV).await.unwrap();
    let held = reconcile::begin(&f.target, Some(&plan), &start(1, 30_000)).await.unwrap();
    let mended = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!((mended.state, mended.rows_read), (RunState::Completed, 1));
    assert_eq!(count(&f.target, &in_subtypes(i64::MIN)).await, 1, "a reconcile of the least id copies it");

    let held = rollback::begin(&f.target, &f.control, &start(1, 30_000)).await.unwrap();
    let rolled = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(rolled.state, RunState::Completed);
    assert_eq!(split_rows(&f).await, 0, "the rollback removed every backfilled row, both ends included");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_id_of_i64_is_covered_the_least_included() {
    every_id_of_i64_is_covered_the_least_included(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_id_of_i64_is_covered_the_least_included() {
    every_id_of_i64_is_covered_the_least_included(Backend::Postgres).await;
}
