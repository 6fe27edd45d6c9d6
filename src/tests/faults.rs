//! Faults are waited out, not fatal: a locked table, a busy SQLite file, connections killed
//! under the runner; a poison row isolated by split-and-retry; the breaker; throttling on a
//! custom signal; a signal that cannot be read stops the start.

use crate::engine_defects::{cure, exec, poison_row_2500, Refusal};
use crate::engine_runs::{count, fixture, start, Fixture, DEV};
use crate::support::Backend;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sti_rollout::db::{Database, Dialect, SessionSettings};
use sti_rollout::domain::policy::{CustomSignal, Policy};
use sti_rollout::domain::run::{Hold, HoldKind, RunKind, RunState};
use sti_rollout::engine::backfill::{self, REFUSED_PREFIX};
use sti_rollout::engine::{operate, runs, EngineError};

/// A policy that tries again soon, so a test waits seconds, not minutes.
fn quick() -> Policy {
    let mut policy = Policy::default();
    policy.retry.first_backoff_ms = 50;
    policy.retry.max_backoff_ms = 400;
    policy
}

/// Runs a backfill over `target` (chunks of `chunk`) under `policy` to its end; the run and
/// every hold the runner reported on the way.
async fn backfill_observed(
    f: &Fixture,
    target: &Database,
    chunk: i64,
    policy: Policy,
) -> (Result<runs::RunRecord, EngineError>, Vec<Hold>) {
    run_observed(f, target, begin(target, chunk, policy).await).await
}

async fn begin(target: &Database, chunk: i64, policy: Policy) -> runs::Held {
    let mut start = start(chunk, 30_000);
    start.policy = Arc::new(policy);
    backfill::begin(target, &start).await.unwrap()
}

/// Runs `held` to its end; the run and every hold the runner reported on the way.
async fn run_observed(
    f: &Fixture,
    target: &Database,
    held: runs::Held,
) -> (Result<runs::RunRecord, EngineError>, Vec<Hold>) {
    let mut holds: Vec<Hold> = Vec::new();
    let result = backfill::run(target, Some(&f.control), DEV, held, &mut |run, _| {
        if let Some(hold) = &run.hold {
            if holds.last() != Some(hold) {
                holds.push(hold.clone());
            }
        }
    })
    .await;
    (result, holds)
}

async fn copied(f: &Fixture) -> i64 {
    count(&f.target, "select count(*) from school_projects").await
        + count(&f.target, "select count(*) from self_study_projects").await
}

async fn a_poison_row_becomes_a_dead_letter_and_the_run_completes(backend: Backend) {
    let f = fixture(backend, 3_000).await;
    poison_row_2500(&f, Refusal::Row).await;
    let (run, _) = backfill_observed(&f, &f.target, 1_000, quick()).await;
    let run = run.expect("one refused row does not fail the run");
    assert_eq!(run.state, RunState::Completed);
    let reason: String = sqlx::query_scalar(
        "select reason from sti_backfill_dead_letters where run_id = $1 and project_id = 2500",
    )
    .bind(run.id)
    .fetch_one(f.target.pool())
    .await
    .unwrap();
    assert!(reason.starts_with(REFUSED_PREFIX) && reason.contains("poison row 2500"), "{reason}");
    assert_eq!(count(&f.target, "select count(*) from school_projects where project_id = 2500").await, 0);
    assert_eq!(copied(&f).await + run.errors, 3_000, "every other row copied, each once: {run:?}");
    assert_eq!(run.rows_read, 3_000, "the split chunks read each row once");
    // the third chunk was split: more chunks than three in the ledger, one of them the lone row
    let lone =
        count(&f.target, "select count(*) from sti_backfill_chunks where from_id = 2499 and to_id = 2500")
            .await;
    assert_eq!(lone, 1, "the refused row has its own ledger row");
    // the refused row is known, not drift: verification passes and says so
    let report =
        sti_rollout::engine::verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok && report.refused == 1, "{report:?}");

    // a reconcile meeting a refused id records it as a dead letter and goes on with the others
    exec(&f, "update projects set project_type = 'school', school_name = 'Drifted', grade = 3, pace = null where id in (2499, 2501)").await;
    let mut tx = f.target.begin_write().await.unwrap();
    sti_rollout::engine::capture::reidentify_ids(&mut tx, f.target.dialect(), &[2499, 2500, 2501], run.id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&f.target, "select count(*) from school_projects where project_id in (2499, 2501) and school_name = 'Drifted'").await, 2);
    cure(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_poison_row_becomes_a_dead_letter_and_the_run_completes() {
    a_poison_row_becomes_a_dead_letter_and_the_run_completes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_poison_row_becomes_a_dead_letter_and_the_run_completes() {
    a_poison_row_becomes_a_dead_letter_and_the_run_completes(Backend::Postgres).await;
}

async fn the_breaker_stops_a_run_whose_chunks_mostly_fail(backend: Backend) {
    let f = fixture(backend, 300).await;
    // every school row is refused
    match f.target.dialect() {
        Dialect::Sqlite => {
            exec(&f, "create trigger refuse before insert on school_projects begin select raise(abort, 'no schools'); end")
                .await
        }
        Dialect::Postgres => {
            exec(
                &f,
                "create function refuse() returns trigger language plpgsql as $$ begin raise exception 'no schools'; end $$",
            )
            .await;
            exec(&f, "create trigger refuse before insert on school_projects for each row execute function refuse()").await;
        }
    }
    let (run, _) = backfill_observed(&f, &f.target, 20, quick()).await;
    let error = run.unwrap_err();
    assert!(matches!(error, EngineError::Breaker { .. }), "{error}");
    let failed = runs::list(&f.target, 1).await.unwrap().remove(0);
    assert_eq!(failed.state, RunState::Failed);
    assert!(
        failed.error.as_deref().unwrap_or_default().contains("the breaker stopped the run"),
        "{:?}",
        failed.error
    );
    assert!(failed.checkpoint < 300, "it stopped early, at {}", failed.checkpoint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_breaker_stops_a_run_whose_chunks_mostly_fail() {
    the_breaker_stops_a_run_whose_chunks_mostly_fail(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_breaker_stops_a_run_whose_chunks_mostly_fail() {
    the_breaker_stops_a_run_whose_chunks_mostly_fail(Backend::Postgres).await;
}

/// The fixture's dev target as the console opens it: sessions named and with a short lock
/// timeout.
async fn target_with_sessions(f: &Fixture, lock_timeout_ms: i64) -> Database {
    let session = SessionSettings {
        application_name: "sti-rollout/dev".into(),
        lock_timeout_ms,
        statement_timeout_ms: 60_000,
    };
    Database::connect_target(&f.config.targets[DEV].url, false, &session).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_locked_table_is_waited_out_and_the_run_goes_on() {
    let f = fixture(Backend::Postgres, 2_000).await;
    let target = target_with_sessions(&f, 200).await;
    let mut locker = f.target.pool().begin().await.unwrap();
    sqlx::query("lock table school_projects in access exclusive mode").execute(&mut *locker).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        locker.commit().await.unwrap();
    });
    let (run, holds) = backfill_observed(&f, &target, 500, quick()).await;
    release.await.unwrap();
    let run = run.expect("a lock timeout is waited out");
    assert_eq!((run.state, run.rows_read), (RunState::Completed, 2_000));
    assert_eq!(copied(&f).await + run.errors, 2_000);
    let waited = holds.iter().find(|h| h.kind == HoldKind::Waiting).expect("the run said it waited");
    assert!(waited.reason.contains("lock timeout (55P03)"), "{waited:?}");
    assert_eq!(waited.label, "lock timeout");
    // the mirror no longer says so
    let mirrored: Option<String> = sqlx::query_scalar("select hold_kind from runs where run_id = $1")
        .bind(run.id)
        .fetch_one(f.control.pool())
        .await
        .unwrap();
    assert_eq!(mirrored, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_killed_under_the_runner_are_waited_out() {
    let f = fixture(Backend::Postgres, 5_000).await;
    let target = target_with_sessions(&f, 5_000).await;
    let mut policy = quick();
    policy.retry.first_backoff_ms = 20;
    let held = begin(&target, 100, policy).await;
    let killer_db = f.target.clone();
    let killing = tokio::spawn(async move {
        let mut killed = 0_i64;
        for _ in 0..30 {
            killed += sqlx::query_scalar::<_, i64>(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
                  where application_name like 'sti-rollout/dev%' and pid <> pg_backend_pid()) k",
            )
            .fetch_one(killer_db.pool())
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        killed
    });
    let (run, holds) = run_observed(&f, &target, held).await;
    let killed = killing.await.unwrap();
    let run = run.expect("killed connections are waited out");
    assert!(killed > 0, "the test killed no connection");
    assert_eq!(run.state, RunState::Completed);
    assert_eq!(copied(&f).await + run.errors, 5_000, "no row lost or doubled: {run:?}");
    let ledger =
        count(&f.target, &format!("select count(*) from sti_backfill_chunks where run_id = {}", run.id))
            .await;
    assert_eq!(ledger, run.chunks, "one ledger row per committed chunk");
    assert!(
        holds.iter().any(|h| h.kind == HoldKind::Waiting),
        "killed {killed} connections, holds {holds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_database_busy_past_its_timeout_is_waited_out() {
    let f = fixture(Backend::Sqlite, 1_000).await;
    let held = begin(&f.target, 500, quick()).await;
    // then another writer holds the file longer than the busy timeout (5 s)
    let mut writer = f.target.begin_write().await.unwrap();
    sqlx::query("update projects set title = title where id = 1").execute(&mut *writer).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(6_500)).await;
        writer.commit().await.unwrap();
    });
    let (run, holds) = run_observed(&f, &f.target, held).await;
    release.await.unwrap();
    let run = run.expect("SQLITE_BUSY is waited out");
    assert_eq!((run.state, run.rows_read), (RunState::Completed, 1_000));
    let waited = holds.iter().find(|h| h.kind == HoldKind::Waiting).expect("the run said it waited");
    assert!(waited.reason.contains("SQLITE_BUSY"), "{waited:?}");
}

async fn a_run_throttled_by_a_custom_signal_holds_says_why_and_goes_on(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    exec(&f, "create table queue_depth (n integer)").await;
    exec(&f, "insert into queue_depth values (1200)").await;
    let mut policy = quick();
    policy.throttle.custom = Some(CustomSignal {
        name: "queue depth".into(),
        sql: "select max(n) from queue_depth".into(),
        max: 1000.0,
    });
    let seen = Arc::new(Mutex::new(None::<Hold>));
    let (control, target, watched) = (f.control.clone(), f.target.clone(), seen.clone());
    let watcher = tokio::spawn(async move {
        // once the mirror shows the hold, the queue drains
        for _ in 0..200 {
            let views = sti_rollout::db::live::history(&control, DEV, 1).await.unwrap();
            if let Some(hold) = views.first().and_then(|v| v.hold.clone()) {
                *watched.lock().unwrap() = Some(hold);
                // a few more looks at the signal before it goes under
                tokio::time::sleep(Duration::from_millis(2_500)).await;
                sqlx::query("update queue_depth set n = 10").execute(target.pool()).await.unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let (run, holds) = backfill_observed(&f, &f.target, 500, policy).await;
    watcher.await.unwrap();
    let run = run.expect("a throttled run goes on");
    assert_eq!((run.state, run.rows_read), (RunState::Completed, 2_000));
    let mirrored = seen.lock().unwrap().clone().expect("the console saw the hold");
    assert_eq!(mirrored.kind, HoldKind::Throttled);
    assert_eq!(mirrored.reason, "queue depth 1200 > 1000");
    assert_eq!(mirrored.label, "queue depth");
    assert!(holds.iter().any(|h| h.reason == "queue depth 1200 > 1000"), "{holds:?}");
    let since: std::collections::BTreeSet<i64> =
        holds.iter().filter(|h| h.kind == HoldKind::Throttled).map(|h| h.since_ms).collect();
    assert_eq!(since.len(), 1, "held since the first check, however often it looked again: {holds:?}");
    assert!(holds.len() >= 3, "it looked again while held: {holds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_run_throttled_by_a_custom_signal_holds_says_why_and_goes_on() {
    a_run_throttled_by_a_custom_signal_holds_says_why_and_goes_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_throttled_by_a_custom_signal_holds_says_why_and_goes_on() {
    a_run_throttled_by_a_custom_signal_holds_says_why_and_goes_on(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_that_cannot_be_read_stops_the_start_and_starts_nothing() {
    let f = fixture(Backend::Sqlite, 100).await;
    let mut start = start(50, 30_000);
    let mut policy = Policy::default();
    policy.throttle.custom =
        Some(CustomSignal { name: "queue depth".into(), sql: "select n from nowhere".into(), max: 1.0 });
    start.policy = Arc::new(policy);
    let error = operate::begin(&f.control, &f.target, RunKind::Backfill, &start, None).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("the health signal 'queue depth' cannot be read:") && message.contains("nowhere"),
        "{message}"
    );
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_runs").await, 0, "no run was created");
}

#[test]
fn a_policy_out_of_range_in_the_config_file_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sti.toml");
    std::fs::write(&file, "[policy.prod.retry]\nfirst_backoff_ms = 0\n").unwrap();
    let error = sti_rollout::server::config::Config::load_with(dir.path(), Some(&file), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("policy.prod.retry.first_backoff_ms must be between 10 and 60000, not 0"),
        "{error}"
    );
    std::fs::write(&file, "[policy.prod.retry]\nfirst_backof_ms = 10\n").unwrap();
    let error = sti_rollout::server::config::Config::load_with(dir.path(), Some(&file), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("first_backof_ms"), "an unknown setting is named: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_wait_counts_down_a_live_holders_lease_then_takes_the_run_over() {
    let f = fixture(Backend::Sqlite, 1_000).await;
    // this test process holds the run (alive, so no take-over at once) and never renews it
    let held = backfill::begin(&f.target, &start(100, 3_000)).await.unwrap();
    let vars = crate::support::config_vars(&f.config);
    let refused = crate::support::cli(&["backfill", "--env", "dev"], &vars);
    assert!(!refused.status.success());
    assert!(
        crate::support::stderr(&refused).contains("is already active"),
        "{}",
        crate::support::stderr(&refused)
    );

    let waited = crate::support::cli(&["backfill", "--env", "dev", "--wait"], &vars);
    let err = crate::support::stderr(&waited);
    assert!(waited.status.success(), "{err}");
    assert!(
        err.contains(&format!("run #{} (running) is held by", held.run.id))
            && err.contains("waiting for it (--wait)"),
        "{err}"
    );
    let run = runs::get(&f.target, held.run.id).await.unwrap();
    assert_eq!(
        (run.state, run.rows_read),
        (RunState::Completed, 1_000),
        "the waiting runner took it over and finished it"
    );
}
