//! Parallel workers on one run (PRODUCT §7): slices claimed with `for update skip locked`, each
//! chunk fenced by the slice's claim; SQLite refuses more than one worker.

use crate::engine_runs::{count, fixture, start, DEV};
use crate::support::Backend;
use sqlx::Row;
use std::time::Duration;
use sti_rollout::domain::run::{RunRequest, RunState};
use sti_rollout::engine::runs::Held;
use sti_rollout::engine::{backfill, runs, slices, verify, EngineError};

fn with_workers(chunk: i64, workers: i64) -> backfill::Start {
    backfill::Start { workers, ..start(chunk, 30_000) }
}

/// The ledger's ranges, sorted: they must tile `(0, high]` without a gap or an overlap.
async fn tiles(target: &sti_rollout::db::Database, run_id: i64, high: i64) -> Vec<String> {
    let ranges: Vec<(i64, i64)> =
        sqlx::query("select from_id, to_id from sti_backfill_chunks where run_id = $1 order by from_id")
            .bind(run_id)
            .fetch_all(target.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get("from_id"), r.get("to_id")))
            .collect();
    let mut wrong = Vec::new();
    if ranges.first().map(|r| r.0) != Some(0) {
        wrong.push(format!("the first chunk starts at {:?}", ranges.first()));
    }
    if ranges.last().map(|r| r.1) != Some(high) {
        wrong.push(format!("the last chunk ends at {:?}", ranges.last()));
    }
    for pair in ranges.windows(2) {
        if pair[0].1 != pair[1].0 {
            wrong.push(format!("{:?} then {:?}", pair[0], pair[1]));
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_four_workers_copy_every_row_once_and_the_ledger_names_them() {
    let f = fixture(Backend::Postgres, 20_000).await;
    let held = backfill::begin(&f.target, &with_workers(400, 4)).await.unwrap();
    assert_eq!(held.run.workers, 4);
    let run = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();

    assert_eq!(run.state, RunState::Completed, "{:?}", run.error);
    assert_eq!(run.rows_read, 20_000);
    assert_eq!(run.errors, 100, "0.5% of 20,000");
    assert_eq!(run.checkpoint, 20_000);
    assert_eq!(
        count(&f.target, "select count(*) from school_projects").await
            + count(&f.target, "select count(*) from self_study_projects").await,
        run.created()
    );
    assert_eq!(tiles(&f.target, run.id, 20_000).await, Vec::<String>::new());
    let slices = count(&f.target, "select count(*) from sti_backfill_slices").await;
    assert_eq!(slices, 25, "20,000 rows in slices of at least two chunks of 400, at most 8 per worker");
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_slices where done = 1").await, slices);
    let workers = count(&f.target, "select count(distinct worker) from sti_backfill_chunks").await;
    assert!(workers >= 2, "the chunks were committed by {workers} worker(s)");
    assert_eq!(
        count(&f.target, "select count(*) from sti_backfill_chunks where worker not like '%#_'").await,
        0,
        "every chunk names its worker"
    );
    assert!(verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap().ok);
    // the mirror has every chunk and who committed it
    assert_eq!(
        count(&f.control, "select count(*) from run_chunks where environment = 'dev' and worker is not null")
            .await,
        run.chunks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_worker_whose_claim_was_taken_commits_nothing() {
    let f = fixture(Backend::Postgres, 2_000).await;
    let held = backfill::begin(&f.target, &with_workers(100, 2)).await.unwrap();
    slices::cut(&f.target, &held.run).await.unwrap();
    let first = slices::claim(&f.target, held.run.id, "stale#1", 50).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let second = slices::claim(&f.target, held.run.id, "fresh#1", 30_000).await.unwrap().unwrap();
    assert_eq!(
        (second.slice_no, second.token),
        (first.slice_no, first.token + 1),
        "the expired claim is taken"
    );

    let stale = Held { slice: Some(first), worker: "stale#1".into(), ..held.clone() };
    let refused = backfill::backfill_chunk(&f.target, &stale, first.checkpoint, first.checkpoint + 100)
        .await
        .unwrap_err();
    assert!(matches!(refused, EngineError::ClaimLost { .. }), "{refused}");
    assert_eq!(count(&f.target, "select count(*) from school_projects").await, 0);
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_chunks").await, 0);

    // the fresh claim commits, and a live claim is skipped by the next worker
    let fresh = Held { slice: Some(second), worker: "fresh#1".into(), ..held.clone() };
    backfill::backfill_chunk(&f.target, &fresh, second.checkpoint, second.checkpoint + 100).await.unwrap();
    let other = slices::claim(&f.target, held.run.id, "other#1", 30_000).await.unwrap().unwrap();
    assert_ne!(other.slice_no, second.slice_no);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_pause_and_cancel_reach_every_worker() {
    let f = fixture(Backend::Postgres, 30_000).await;
    let mut slow = with_workers(200, 3);
    slow.pacing.pause_ms = 30;
    let held = backfill::begin(&f.target, &slow).await.unwrap();
    let run_id = held.run.id;
    let (target, control) = (f.target.clone(), f.control.clone());
    let driver =
        tokio::spawn(async move { backfill::run(&target, Some(&control), DEV, held, &mut |_, _| {}).await });
    tokio::time::sleep(Duration::from_millis(600)).await;
    runs::request(&f.target, run_id, RunRequest::Pause).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(runs::get(&f.target, run_id).await.unwrap().state, RunState::Paused);
    let before = count(&f.target, "select count(*) from sti_backfill_chunks").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        count(&f.target, "select count(*) from sti_backfill_chunks").await,
        before,
        "paused: no worker commits"
    );
    assert_eq!(
        count(
            &f.target,
            "select count(*) from sti_backfill_slices where claimed_by is not null and done = 0"
        )
        .await,
        0,
        "paused workers give their slices back"
    );
    runs::request(&f.target, run_id, RunRequest::Cancel).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), driver).await.unwrap().unwrap().unwrap();
    assert_eq!(ended.state, RunState::Cancelled);
    assert!(ended.rows_read > 0 && ended.rows_read < 30_000, "{}", ended.rows_read);
    let after = count(&f.target, "select count(*) from sti_backfill_chunks").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(&f.target, "select count(*) from sti_backfill_chunks").await,
        after,
        "cancelled: no worker commits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_more_than_one_worker_with_a_sentence() {
    let f = fixture(Backend::Sqlite, 100).await;
    let refused = backfill::begin(&f.target, &with_workers(100, 2)).await.unwrap_err();
    assert!(matches!(refused, EngineError::Workers(_)), "{refused}");
    assert!(refused.to_string().contains("need a PostgreSQL target"), "{refused}");
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_runs").await, 0);
}
