//! Reconcile re-copies exactly the ids verification found different; verification looks at a
//! difference twice before it reports it.

use crate::engine_defects::exec;
use crate::engine_runs::{count, fixture, run_backfill, start, Fixture, DEV};
use crate::support::{cli, config_vars, stderr, stdout, Backend};
use sti_rollout::domain::run::{RunKind, RunState};
use sti_rollout::engine::{backfill, operate, reconcile, verify};

/// Ids of the first `n` school rows after `after`.
async fn school_rows(f: &Fixture, after: i64, n: i64) -> Vec<i64> {
    sqlx::query_scalar(&format!(
        "select project_id from school_projects where project_id > {after} order by project_id limit {n}"
    ))
    .fetch_all(f.target.pool())
    .await
    .unwrap()
}

/// Drift made behind the engine's back (no capture): two type changes, a row turned dirty, a
/// rename; the ids, sorted.
async fn drift(f: &Fixture) -> Vec<i64> {
    let ids = school_rows(f, 100, 4).await;
    for id in &ids[..2] {
        exec(f, &format!("update projects set project_type = 'self_study', pace = 'regular', school_name = null, grade = null where id = {id}")).await;
    }
    exec(f, &format!("update projects set school_name = null where id = {}", ids[2])).await;
    exec(f, &format!("update projects set school_name = 'Renamed' where id = {}", ids[3])).await;
    ids
}

async fn reconcile_re_copies_exactly_the_ids_verification_found_different(backend: Backend) {
    let f = fixture(backend, 3_000).await;
    let first = run_backfill(&f, 500).await;
    let vars = config_vars(&f.config);
    let nothing = cli(&["reconcile", "--env", "dev", "--dry-run"], &vars);
    assert!(!nothing.status.success());
    assert!(stderr(&nothing).contains("no verification yet"), "{}", stderr(&nothing));

    let ids = drift(&f).await;
    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.mismatched_ids, ids);

    let dry = cli(&["reconcile", "--env", "dev", "--dry-run"], &vars);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let listed = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
    assert!(
        stdout(&dry).contains("4 ids from verification") && stdout(&dry).contains(&listed),
        "{}",
        stdout(&dry)
    );
    let untouched_before = count(
        &f.target,
        &format!("select count(*) from school_projects where backfill_run_id = {}", first.id),
    )
    .await;

    let out = cli(&["reconcile", "--env", "dev", "--chunk", "3"], &vars);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = sti_rollout::engine::runs::list(&f.target, 1).await.unwrap().remove(0);
    assert_eq!(
        (run.kind, run.state, run.rows_read, run.chunks),
        (RunKind::Reconcile, RunState::Completed, 4, 2)
    );
    assert_eq!(run.ids.as_deref(), Some(&ids[..]));
    assert_eq!((run.school_created, run.self_study_created, run.errors), (1, 2, 1), "{run:?}");

    let clean = verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(clean.ok, "{:?}", clean.mismatched_ids);
    // nothing else was written: every other row keeps the first run's provenance
    let untouched = count(
        &f.target,
        &format!("select count(*) from school_projects where backfill_run_id = {}", first.id),
    )
    .await;
    assert_eq!(untouched, untouched_before - 4, "only the four ids changed hands");
    assert_eq!(
        count(
            &f.target,
            &format!("select count(*) from sti_backfill_dead_letters where project_id = {}", ids[2])
        )
        .await,
        1
    );

    // what it wrote, a rollback deletes
    let held =
        operate::begin(&f.control, &f.target, RunKind::Rollback, &start(1_000, 30_000), None).await.unwrap();
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    assert_eq!(
        count(
            &f.target,
            "select (select count(*) from school_projects) + (select count(*) from self_study_projects)"
        )
        .await,
        0
    );

    // the audit says who reconciled
    let entries = sti_rollout::db::audit::recent(&f.control, None, 50).await.unwrap();
    assert!(
        entries.iter().any(|e| e.action == "run.start"
            && e.after.as_deref().is_some_and(|a| a.contains("\"kind\":\"reconcile\""))),
        "reconcile audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reconcile_re_copies_exactly_the_ids_verification_found_different() {
    reconcile_re_copies_exactly_the_ids_verification_found_different(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reconcile_re_copies_exactly_the_ids_verification_found_different() {
    reconcile_re_copies_exactly_the_ids_verification_found_different(Backend::Postgres).await;
}

async fn a_difference_mended_right_after_the_check_is_not_reported(backend: Backend) {
    let f = fixture(backend, 2_000).await;
    let run = run_backfill(&f, 500).await.id;
    let ids = drift(&f).await;
    // as the change capture would a moment later: the rows are mended as soon as the first
    // pass is over, while verification has not reported yet
    let target = f.target.clone();
    let mut mended = None;
    let report = verify::verify(&f.target, Some(&f.control), DEV, &mut |from, high| {
        if from >= high && mended.is_none() {
            let (target, ids) = (target.clone(), ids.clone());
            mended = Some(tokio::spawn(async move {
                let mut tx = target.begin_write().await.unwrap();
                sti_rollout::engine::capture::reidentify_ids(&mut tx, target.dialect(), &ids, run)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }));
        }
    })
    .await
    .unwrap();
    mended.expect("the first pass ended").await.unwrap();
    assert!(report.ok, "a difference gone on the second look is no drift: {:?}", report.mismatched_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_difference_mended_right_after_the_check_is_not_reported() {
    a_difference_mended_right_after_the_check_is_not_reported(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_difference_mended_right_after_the_check_is_not_reported() {
    a_difference_mended_right_after_the_check_is_not_reported(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_reconcile_after_a_clean_verification() {
    let f = fixture(Backend::Sqlite, 500).await;
    run_backfill(&f, 500).await;
    verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    let error = reconcile::plan(&f.control, &f.target, DEV).await.unwrap_err().to_string();
    assert!(error.contains("found no difference"), "{error}");
}
