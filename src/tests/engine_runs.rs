//! The backfill engine against real databases: counts, idempotence, dead letters, dry-run,
//! crashes and resumption, the lease, rollback and verification — on SQLite and PostgreSQL.

use crate::support::{cli, config, config_vars, open, stderr, stdout, Backend};
use sqlx::Row;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;
use sti_rollout::db::seed::{seed, SeedMode};
use sti_rollout::db::{control, Database, Schema};
use sti_rollout::domain::environment::Environment;
use sti_rollout::domain::pacing::Pacing;
use sti_rollout::domain::run::{RunRequest, RunState};
use sti_rollout::engine::backfill::{self, Start};
use sti_rollout::engine::{dry_run, rollback, runs, verify, EngineError};
use sti_rollout::server::config::Config;
use tempfile::TempDir;

pub(crate) const DEV: Environment = Environment::Dev;

pub(crate) struct Fixture {
    pub(crate) config: Config,
    _dir: TempDir,
    pub(crate) control: Database,
    pub(crate) target: Database,
}

/// Fresh databases with `rows` demo legacy rows in dev.
pub(crate) async fn fixture(backend: Backend, rows: i64) -> Fixture {
    let (config, dir) = config(backend, [1, 1, 1]).await;
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let control = open(&config.control, Schema::Control).await;
    control::register_environments(&control).await.unwrap();
    let target = open(&config.targets[DEV].url, Schema::Target).await;
    seed(&target, rows, SeedMode::Fresh, |_, _| {}).await.unwrap();
    Fixture { config, _dir: dir, control, target }
}

pub(crate) fn start(chunk: i64, lease_ms: i64) -> Start {
    Start {
        env: DEV,
        started_by: "test".into(),
        pacing: Pacing::parse(chunk, 0, None).unwrap(),
        resume_from: None,
        lease_ms,
        policy: Default::default(),
        workers: 1,
        defer_fks: false,
    }
}

pub(crate) async fn run_backfill(f: &Fixture, chunk: i64) -> runs::RunRecord {
    let held = backfill::begin(&f.target, &start(chunk, 30_000)).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap()
}

pub(crate) async fn count(db: &Database, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

/// Legacy rows per verdict, as the Rust rule sees them.
async fn identified(db: &Database) -> BTreeMap<String, i64> {
    let sql = format!(
        "select verdict, count(*) as n from {} c group by verdict",
        sti_rollout::db::classify::classified()
    );
    let max = count(db, "select max(id) from projects").await;
    sqlx::query(&sql)
        .bind(0_i64)
        .bind(max)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get::<String, _>("verdict"), r.get::<i64, _>("n")))
        .collect()
}

/// Every row of every table the engine may touch, hashed: equal digests mean nothing changed.
async fn digest(db: &Database) -> u64 {
    let tables = [
        "select cast(id as text) || '|' || title || '|' || coalesce(project_type, '~') || '|' || coalesce(school_name, '~')
            || '|' || coalesce(cast(grade as text), '~') || '|' || coalesce(pace, '~') || '|' || coalesce(cast(goal_date as text), '~')
            || '|' || cast(created_at as text) || '|' || cast(updated_at as text) from projects order by id",
        "select cast(project_id as text) || '|' || school_name || '|' || coalesce(cast(grade as text), '~') || '|'
            || coalesce(cast(backfill_run_id as text), '~') from school_projects order by project_id",
        "select cast(project_id as text) || '|' || coalesce(pace, '~') || '|' || coalesce(cast(goal_date as text), '~') || '|'
            || coalesce(cast(backfill_run_id as text), '~') from self_study_projects order by project_id",
        "select cast(id as text) || '|' || state || '|' || cast(checkpoint as text) || '|' || cast(updated_at as text)
            from sti_backfill_runs order by id",
        "select cast(run_id as text) || '|' || cast(chunk_no as text) from sti_backfill_chunks order by run_id, chunk_no",
        "select cast(run_id as text) || '|' || cast(project_id as text) from sti_backfill_dead_letters order by run_id, project_id",
    ];
    let mut hasher = DefaultHasher::new();
    for sql in tables {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(db.pool()).await.unwrap();
        rows.hash(&mut hasher);
    }
    hasher.finish()
}

async fn a_backfill_creates_what_identification_says_and_a_rerun_creates_nothing(backend: Backend) {
    let f = fixture(backend, 5_000).await;
    let expected = identified(&f.target).await;

    let first = run_backfill(&f, 700).await;
    assert_eq!(first.state, RunState::Completed);
    assert_eq!(first.school_created, expected["school"]);
    assert_eq!(first.self_study_created, expected["self_study"]);
    assert_eq!(first.errors, 25, "0.5% of 5,000");
    assert_eq!(first.rows_read, 5_000);
    assert_eq!(first.chunks, 8, "ceil(5000 / 700)");
    assert_eq!(count(&f.target, "select count(*) from school_projects").await, expected["school"]);
    assert_eq!(count(&f.target, "select count(*) from self_study_projects").await, expected["self_study"]);

    let dead: Vec<(i64, String)> = sqlx::query(
        "select project_id, reason from sti_backfill_dead_letters where run_id = $1 order by project_id",
    )
    .bind(first.id)
    .fetch_all(f.target.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get("project_id"), r.get("reason")))
    .collect();
    assert_eq!(dead.len(), 25);
    for reason in ["ambiguous", "unidentifiable", "grade_out_of_range", "missing_school_name", "unknown_pace"]
    {
        assert_eq!(dead.iter().filter(|(_, r)| r == reason).count(), 5, "{reason}");
        assert_eq!(expected[&format!("x:{reason}")], 5);
    }

    let second = run_backfill(&f, 700).await;
    assert_eq!(
        (second.created(), second.skipped(), second.errors),
        (0, expected["school"] + expected["self_study"], 25)
    );

    // the ledger covers (0, high] without a gap or an overlap
    let ledger: Vec<(i64, i64)> =
        sqlx::query("select from_id, to_id from sti_backfill_chunks where run_id = $1 order by chunk_no")
            .bind(first.id)
            .fetch_all(f.target.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get("from_id"), r.get("to_id")))
            .collect();
    assert_eq!(ledger.first().map(|c| c.0), Some(0));
    assert_eq!(ledger.last().map(|c| c.1), Some(5_000));
    assert!(ledger.windows(2).all(|w| w[0].1 == w[1].0), "{ledger:?}");

    // the control database mirrors the runs and their chunks
    let mirrored =
        count(&f.control, "select count(*) from runs where environment = 'dev' and state = 'completed'")
            .await;
    assert_eq!(mirrored, 2);
    assert_eq!(count(&f.control, "select count(*) from run_chunks where environment = 'dev'").await, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_backfill_creates_what_identification_says_and_a_rerun_creates_nothing() {
    a_backfill_creates_what_identification_says_and_a_rerun_creates_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_backfill_creates_what_identification_says_and_a_rerun_creates_nothing() {
    a_backfill_creates_what_identification_says_and_a_rerun_creates_nothing(Backend::Postgres).await;
}

async fn a_dry_run_reports_the_live_run_and_writes_nothing(backend: Backend) {
    let f = fixture(backend, 3_000).await;
    // a few rows the application already wrote: a live run would skip them
    sqlx::query(
        "insert into school_projects (project_id, school_name, grade, created_at)
         select id, school_name, grade, created_at from projects
         where id <= 200 and project_type = 'school' and school_name is not null and (grade is null or grade between 1 and 13)",
    )
    .execute(f.target.pool())
    .await
    .unwrap();
    let present = count(&f.target, "select count(*) from school_projects").await;
    let before = digest(&f.target).await;

    let report = dry_run::dry_run(
        &f.target,
        Some(&f.control),
        DEV,
        Pacing::parse(400, 0, None).unwrap(),
        None,
        &mut |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(digest(&f.target).await, before, "the target database is unchanged");

    let expected = identified(&f.target).await;
    assert_eq!(report.would_skip.school, present);
    assert_eq!(report.would_create.school, expected["school"] - present);
    assert_eq!(report.would_create.self_study, expected["self_study"]);
    assert_eq!(report.would_reject, 15);
    assert_eq!(report.reasons.values().sum::<i64>(), 15);
    assert_eq!(report.chunks, 8);
    assert!(report.estimated_live_seconds > 0.0);

    let live = run_backfill(&f, 400).await;
    assert_eq!(live.created(), report.would_create.school + report.would_create.self_study);
    assert_eq!(live.skipped(), report.would_skip.school + report.would_skip.self_study);
    assert_eq!(live.errors, report.would_reject);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_dry_run_reports_the_live_run_and_writes_nothing() {
    a_dry_run_reports_the_live_run_and_writes_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_dry_run_reports_the_live_run_and_writes_nothing() {
    a_dry_run_reports_the_live_run_and_writes_nothing(Backend::Postgres).await;
}

async fn a_runner_whose_lease_was_taken_commits_nothing(backend: Backend) {
    let f = fixture(backend, 1_000).await;
    let stale = backfill::begin(&f.target, &start(100, 50)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let fresh = runs::take_over(&f.target, stale.run.id, "other-runner", 30_000).await.unwrap();
    assert_eq!(fresh.token, stale.token + 1);

    let refused = backfill::backfill_chunk(&f.target, &stale, 0, 100).await.unwrap_err();
    assert!(matches!(refused, EngineError::LeaseLost { .. }), "{refused}");
    assert_eq!(count(&f.target, "select count(*) from school_projects").await, 0);
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_chunks").await, 0);

    let done = backfill::run(&f.target, None, DEV, fresh, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    assert_eq!(done.rows_read, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_runner_whose_lease_was_taken_commits_nothing() {
    a_runner_whose_lease_was_taken_commits_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_runner_whose_lease_was_taken_commits_nothing() {
    a_runner_whose_lease_was_taken_commits_nothing(Backend::Postgres).await;
}

async fn a_live_lease_refuses_a_second_runner(backend: Backend) {
    let f = fixture(backend, 500).await;
    let held = backfill::begin(&f.target, &start(100, 30_000)).await.unwrap();
    let second = backfill::begin(&f.target, &start(100, 30_000)).await.unwrap_err();
    assert!(matches!(second, EngineError::Busy { run_id, .. } if run_id == held.run.id), "{second}");
    let rollback = rollback::begin(&f.target, &f.control, &start(100, 30_000)).await.unwrap_err();
    assert!(matches!(rollback, EngineError::Busy { .. }), "{rollback}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_live_lease_refuses_a_second_runner() {
    a_live_lease_refuses_a_second_runner(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_live_lease_refuses_a_second_runner() {
    a_live_lease_refuses_a_second_runner(Backend::Postgres).await;
}

async fn rollback_removes_exactly_the_backfilled_rows(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    // the application wrote these itself (no backfill_run_id): rollback must keep them
    sqlx::query(
        "insert into self_study_projects (project_id, pace, created_at)
         select id, 'regular', created_at from projects where id <= 50 and project_type = 'self_study'",
    )
    .execute(f.target.pool())
    .await
    .unwrap();
    let app_rows = count(&f.target, "select count(*) from self_study_projects").await;
    assert!(app_rows > 0);
    run_backfill(&f, 500).await;

    let plan = rollback::plan(&f.target, DEV).await.unwrap();
    assert_eq!(plan.kept, app_rows);
    assert_eq!(plan.school, count(&f.target, "select count(*) from school_projects").await);

    // refused while the flag is on
    sqlx::query("update flags set enabled = $1 where environment = 'dev'")
        .bind(true)
        .execute(f.control.pool())
        .await
        .unwrap();
    let refused = rollback::begin(&f.target, &f.control, &start(500, 30_000)).await.unwrap_err();
    assert_eq!(refused.to_string(), "rollback refused: ENABLE_STI is on in dev; turn the flag off first");
    sqlx::query("update flags set enabled = $1 where environment = 'dev'")
        .bind(false)
        .execute(f.control.pool())
        .await
        .unwrap();

    let held = rollback::begin(&f.target, &f.control, &start(300, 30_000)).await.unwrap();
    let done = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(done.state, RunState::Completed);
    assert_eq!(done.created(), plan.school + plan.self_study, "deleted");
    assert_eq!(count(&f.target, "select count(*) from school_projects").await, 0);
    assert_eq!(count(&f.target, "select count(*) from self_study_projects").await, app_rows);
    assert_eq!(
        count(&f.target, "select count(*) from self_study_projects where backfill_run_id is not null").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rollback_removes_exactly_the_backfilled_rows() {
    rollback_removes_exactly_the_backfilled_rows(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rollback_removes_exactly_the_backfilled_rows() {
    rollback_removes_exactly_the_backfilled_rows(Backend::Postgres).await;
}

async fn verify_catches_rows_changed_behind_the_engines_back(backend: Backend) {
    let f = fixture(backend, 3_000).await;
    let before = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(!before.ok, "nothing is backfilled yet");
    run_backfill(&f, 1_000).await;
    let clean = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(clean.ok, "{clean:?}");

    let deleted: i64 =
        count(&f.target, "select min(project_id) from school_projects where project_id > 1500").await;
    let altered: i64 = count(&f.target, "select max(project_id) from self_study_projects").await;
    sqlx::query("delete from school_projects where project_id = $1")
        .bind(deleted)
        .execute(f.target.pool())
        .await
        .unwrap();
    sqlx::query("update self_study_projects set pace = case when pace = 'relaxed' then 'intensive' else 'relaxed' end where project_id = $1")
        .bind(altered)
        .execute(f.target.pool())
        .await
        .unwrap();

    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.mismatched_ids, vec![deleted, altered]);
    assert_eq!(report.school_rows, report.legacy_school - 1);
    let stored = count(&f.control, "select count(*) from verifications where environment = 'dev'").await;
    assert_eq!(stored, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_verify_catches_rows_changed_behind_the_engines_back() {
    verify_catches_rows_changed_behind_the_engines_back(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_catches_rows_changed_behind_the_engines_back() {
    verify_catches_rows_changed_behind_the_engines_back(Backend::Postgres).await;
}

/// Waits until the dev run's checkpoint passes `id`.
pub(crate) async fn wait_for_checkpoint(db: &Database, id: i64) {
    for _ in 0..3000 {
        let checkpoint: Option<i64> =
            sqlx::query_scalar("select max(checkpoint) from sti_backfill_runs where active_slot = 1")
                .fetch_one(db.pool())
                .await
                .unwrap();
        if checkpoint.is_some_and(|c| c >= id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the run never reached id {id}");
}

async fn kill_9_at_several_points_then_resume_gives_exactly_the_right_rows(backend: Backend) {
    let f = fixture(backend, 6_000).await;
    let vars = config_vars(&f.config);
    let slow = ["backfill", "--env", "dev", "--chunk", "100", "--pause-ms", "15", "--lease-seconds", "1"];
    for kill_after in [1_000, 2_500, 4_200] {
        let mut child = crate::support::spawn_cli(&slow, &vars);
        wait_for_checkpoint(&f.target, kill_after).await;
        child.kill().unwrap(); // SIGKILL: no cleanup, no graceful anything
        child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await; // let the dead runner's lease expire
    }
    let resumed = cli(&["backfill", "--env", "dev", "--chunk", "500", "--json"], &vars);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("resuming run #1 after id"), "{}", stderr(&resumed));
    let summary: serde_json::Value = serde_json::from_str(stdout(&resumed).trim()).unwrap();
    assert_eq!(summary["run_id"], 1);
    assert_eq!(summary["state"], "completed");

    let expected = identified(&f.target).await;
    let run = runs::get(&f.target, 1).await.unwrap();
    assert_eq!(run.fencing_token, 4, "taken over three times");
    assert_eq!(run.rows_read, 6_000, "every row read once in committed chunks");
    assert_eq!(run.school_created, expected["school"]);
    assert_eq!(count(&f.target, "select count(*) from school_projects").await, expected["school"]);
    assert_eq!(count(&f.target, "select count(*) from self_study_projects").await, expected["self_study"]);
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_dead_letters").await, 30);
    assert!(verify::verify(&f.target, None, DEV, &mut |_, _| {}).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_at_several_points_then_resume_gives_exactly_the_right_rows() {
    kill_9_at_several_points_then_resume_gives_exactly_the_right_rows(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_at_several_points_then_resume_gives_exactly_the_right_rows() {
    kill_9_at_several_points_then_resume_gives_exactly_the_right_rows(Backend::Postgres).await;
}

async fn two_runners_started_at_once_one_runs_the_other_is_refused(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    let vars = config_vars(&f.config);
    // slow enough (20 chunks, 200 ms apart) that the second process starts while the first runs
    let args = ["backfill", "--env", "dev", "--chunk", "100", "--pause-ms", "200"];
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sti-rollout"))
            .args(args)
            .envs(&vars)
            .env("STI_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let succeeded = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(succeeded, 1, "{:?}", outputs.iter().map(stderr).collect::<Vec<_>>());
    let refused = outputs.iter().find(|o| !o.status.success()).unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(refused).contains("is already active in this environment"), "{}", stderr(refused));
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_runs").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_runners_started_at_once_one_runs_the_other_is_refused() {
    two_runners_started_at_once_one_runs_the_other_is_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_runners_started_at_once_one_runs_the_other_is_refused() {
    two_runners_started_at_once_one_runs_the_other_is_refused(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_backfill_arguments_exit_2_before_anything_is_touched() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let vars = config_vars(&config);
    for (args, expected) in [
        (vec!["backfill", "--env", "dev", "--chunk", "0"], "0 is not in 1..=100000"),
        (vec!["backfill", "--env", "dev", "--chunk", "50000000"], "50000000 is not in 1..=100000"),
        (vec!["backfill", "--env", "dev", "--resume-from", "-4"], "unexpected argument '-4'"),
        (vec!["backfill", "--env", "qa"], "unknown environment 'qa'"),
        (vec!["rollback", "--env", "dev", "--chunk", "0"], "0 is not in 1..=100000"),
        (vec!["verify"], "--env <ENV>"),
    ] {
        let output = cli(&args, &vars);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{args:?}: {}", stderr(&output));
    }
    let mut unreachable = vars.clone();
    unreachable.insert("STI_DEV_URL".into(), "postgres://sti@127.0.0.1:1/nowhere".into());
    let output = cli(&["backfill", "--env", "dev"], &unreachable);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output)
        .starts_with("error: dev database: cannot connect to postgres://sti@127.0.0.1:1/nowhere"));
}

async fn metrics_count_what_backfills_did(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    let run = run_backfill(&f, 500).await;
    let app = crate::support::TestApp::start(&f.config).await;
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let line = |labels: &str| format!("sti_backfill_processed_total{{{labels}}}");
    assert!(
        text.contains(&format!(
            "{} {}",
            line("status=\"created\",project_type=\"school\",environment=\"dev\""),
            run.school_created
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "{} {}",
        line("status=\"created\",project_type=\"self_study\",environment=\"dev\""),
        run.self_study_created
    )));
    assert!(text.contains(&format!(
        "{} 10",
        line("status=\"error\",project_type=\"unidentified\",environment=\"dev\"")
    )));
    assert!(text
        .contains(&format!("{} 0", line("status=\"created\",project_type=\"school\",environment=\"prod\""))));
    assert!(text.contains("sti_backfill_chunk_duration_seconds_count{environment=\"dev\"} 4"));
    assert!(text.contains("sti_backfill_run_state{environment=\"dev\",state=\"completed\"} 1"));
    assert!(!text.contains("sti_backfill_last_success_timestamp_seconds{environment=\"dev\"} 0\n"));

    // the overview shows the run from the same mirror
    let (_, html) = app.get("/").await;
    assert!(
        html.contains(r#"<span data-testid="health-dev" class="run-state run-state-completed">completed</span> backfill #1"#),
        "{html}"
    );
    assert!(html.contains(&format!(
        "{} created · 0 skipped · 10 rejected",
        sti_rollout::domain::format::format_count(run.created())
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_metrics_count_what_backfills_did() {
    metrics_count_what_backfills_did(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_metrics_count_what_backfills_did() {
    metrics_count_what_backfills_did(Backend::Postgres).await;
}

/// Waits until the run's state is `state`.
async fn wait_for_state(db: &Database, run_id: i64, state: RunState) {
    for _ in 0..1000 {
        if runs::get(db, run_id).await.unwrap().state == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run #{run_id} never became {state}");
}

async fn pause_resume_cancel_and_pacing_act_at_chunk_boundaries(backend: Backend) {
    let f = fixture(backend, 10_000).await;
    let mut slow = start(100, 30_000);
    slow.pacing = Pacing::parse(100, 20, None).unwrap();
    let held = backfill::begin(&f.target, &slow).await.unwrap();
    let run_id = held.run.id;
    let target = f.target.clone();
    let control = f.control.clone();
    let runner =
        tokio::spawn(async move { backfill::run(&target, Some(&control), DEV, held, &mut |_, _| {}).await });

    wait_for_checkpoint(&f.target, 300).await;
    runs::request(&f.target, run_id, RunRequest::Pause).await.unwrap();
    wait_for_state(&f.target, run_id, RunState::Paused).await;
    let paused_at = runs::get(&f.target, run_id).await.unwrap().checkpoint;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs::get(&f.target, run_id).await.unwrap().checkpoint, paused_at, "no chunk while paused");
    assert!(runs::request(&f.target, run_id, RunRequest::Pause).await.is_err(), "a paused run cannot pause");

    // bigger chunks from now on, still far enough apart to cancel before the end
    runs::set_pacing(&f.target, run_id, Pacing::parse(700, 100, None).unwrap()).await.unwrap();
    runs::request(&f.target, run_id, RunRequest::Resume).await.unwrap();
    wait_for_checkpoint(&f.target, paused_at + 700).await;
    runs::request(&f.target, run_id, RunRequest::Cancel).await.unwrap();
    let ended = runner.await.unwrap().unwrap();
    assert_eq!(ended.state, RunState::Cancelled);

    let spans: Vec<i64> = sqlx::query_scalar(
        "select to_id - from_id from sti_backfill_chunks where run_id = $1 order by chunk_no",
    )
    .bind(run_id)
    .fetch_all(f.target.pool())
    .await
    .unwrap();
    assert!(spans.contains(&100) && spans.contains(&700), "{spans:?}");
    assert!(runs::active(&f.target).await.unwrap().is_none(), "a cancelled run frees the slot");
    assert!(
        runs::request(&f.target, run_id, RunRequest::Resume).await.is_err(),
        "a cancelled run stays cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pause_resume_cancel_and_pacing_act_at_chunk_boundaries() {
    pause_resume_cancel_and_pacing_act_at_chunk_boundaries(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pause_resume_cancel_and_pacing_act_at_chunk_boundaries() {
    pause_resume_cancel_and_pacing_act_at_chunk_boundaries(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_starts_a_new_run_after_the_given_id() {
    let f = fixture(Backend::Sqlite, 5_000).await;
    let mut from_3000 = start(1_000, 30_000);
    from_3000.resume_from = Some(3_000);
    let held = backfill::begin(&f.target, &from_3000).await.unwrap();
    let run = backfill::run(&f.target, None, DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!((run.low_id, run.high_id, run.rows_read), (3_000, 5_000, 2_000));
    assert_eq!(count(&f.target, "select count(*) from school_projects where project_id <= 3000").await, 0);

    let mut beyond = start(1_000, 30_000);
    beyond.resume_from = Some(9_999);
    let refused = backfill::begin(&f.target, &beyond).await.unwrap_err();
    assert_eq!(refused.to_string(), "--resume-from 9999 is beyond the last legacy id 5000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_controls_a_cli_run_from_another_cli() {
    let f = fixture(Backend::Sqlite, 10_000).await;
    let vars = config_vars(&f.config);
    let none = cli(&["control", "--env", "dev", "pause"], &vars);
    assert_eq!((none.status.code(), stderr(&none).as_str()), (Some(1), "error: dev: no run is active\n"));

    let runner = std::process::Command::new(env!("CARGO_BIN_EXE_sti-rollout"))
        .args(["backfill", "--env", "dev", "--chunk", "100", "--pause-ms", "50"])
        .envs(&vars)
        .env("STI_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_checkpoint(&f.target, 200).await;

    let paused = cli(&["control", "--env", "dev", "pause"], &vars);
    assert!(
        stdout(&paused).starts_with("dev: run #1 (running) will pause at its next chunk boundary"),
        "{}",
        stderr(&paused)
    );
    wait_for_state(&f.target, 1, RunState::Paused).await;
    let paced = cli(&["control", "--env", "dev", "pace", "--chunk", "1000", "--pause-ms", "50"], &vars);
    assert_eq!(stdout(&paced), "dev: run #1 (paused) now goes in chunks of 1000 with 50 ms between them\n");
    assert_eq!(cli(&["control", "--env", "dev", "pace", "--chunk", "0"], &vars).status.code(), Some(2));
    assert!(cli(&["control", "--env", "dev", "resume"], &vars).status.success());
    wait_for_state(&f.target, 1, RunState::Running).await;
    assert!(cli(&["control", "--env", "dev", "cancel"], &vars).status.success());

    let ended = runner.wait_with_output().unwrap();
    assert_eq!(ended.status.code(), Some(1));
    assert!(stderr(&ended).ends_with("error: dev: run #1 ended cancelled\n"), "{}", stderr(&ended));
    let run = runs::get(&f.target, 1).await.unwrap();
    assert_eq!(run.state, RunState::Cancelled);
    assert_eq!(run.pacing.chunk_size, 1000);
    assert!(run.checkpoint < 10_000);
}

/// A pause between chunks longer than the lease, or a paused run, keeps its lease alive: the
/// runner renews it, so no second runner can take the run over from under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pause_or_a_paused_run_keeps_its_lease() {
    let f = fixture(Backend::Sqlite, 300).await;
    let lease_ms = 300;
    let mut slow = start(100, lease_ms);
    slow.pacing = Pacing::parse(100, 1_000, None).unwrap();
    let held = backfill::begin(&f.target, &slow).await.unwrap();
    let run_id = held.run.id;
    let (target, control) = (f.target.clone(), f.control.clone());
    let runner =
        tokio::spawn(async move { backfill::run(&target, Some(&control), DEV, held, &mut |_, _| {}).await });
    // well inside the first pause, after the lease would have run out unrenewed
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let refused = backfill::begin(&f.target, &start(100, lease_ms)).await.unwrap_err();
    assert!(matches!(refused, EngineError::Busy { .. }), "{refused}");
    runs::request(&f.target, run_id, RunRequest::Pause).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    assert_eq!(runs::get(&f.target, run_id).await.unwrap().state, RunState::Paused);
    let refused = backfill::begin(&f.target, &start(100, lease_ms)).await.unwrap_err();
    assert!(matches!(refused, EngineError::Busy { .. }), "paused, still held: {refused}");
    let mirrored = sti_rollout::db::live::history(&f.control, DEV, 1).await.unwrap().remove(0);
    assert!(!mirrored.runner_gone(sti_rollout::db::now_ms()), "the console sees a live runner");
    runs::request(&f.target, run_id, RunRequest::Resume).await.unwrap();
    let run = runner.await.unwrap().unwrap();
    assert_eq!((run.state, run.chunks), (RunState::Completed, 3));
}
