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
pub(crate) async fn tiles(target: &sti_rollout::db::Database, run_id: i64, high: i64) -> Vec<String> {
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
async fn postgres_pause_resume_pacing_and_cancel_reach_every_worker() {
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
    // resumed with a smaller chunk: every worker goes on, at the new size
    let smaller = sti_rollout::domain::pacing::Pacing { chunk_size: 50, ..slow.pacing };
    runs::set_pacing(&f.target, run_id, smaller).await.unwrap();
    runs::request(&f.target, run_id, RunRequest::Resume).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(runs::get(&f.target, run_id).await.unwrap().state, RunState::Running);
    let resumed =
        count(&f.target, &format!("select count(*) from sti_backfill_chunks where chunk_no > {before}"))
            .await;
    assert!(resumed >= 3, "{resumed} chunks after the resume");
    assert_eq!(
        count(
            &f.target,
            &format!("select count(*) from sti_backfill_chunks where chunk_no > {before} and rows_read > 50")
        )
        .await,
        0,
        "the new chunk size reached every worker"
    );
    let workers_after = count(
        &f.target,
        &format!("select count(distinct worker) from sti_backfill_chunks where chunk_no > {before}"),
    )
    .await;
    assert!(workers_after >= 2, "{workers_after} worker(s) went on");
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
    assert!(matches!(refused, EngineError::NotSupported(_)), "{refused}");
    assert!(refused.to_string().contains("need a PostgreSQL target"), "{refused}");
    assert_eq!(count(&f.target, "select count(*) from sti_backfill_runs").await, 0);
}

/// The subtype tables' foreign keys to projects: (table, validated).
async fn keys(target: &sti_rollout::db::Database) -> Vec<(String, bool)> {
    sqlx::query(
        "select cast(t.relname as text) as tbl, c.convalidated as valid from pg_constraint c
         join pg_class t on t.oid = c.conrelid join pg_class r on r.oid = c.confrelid
         where c.contype = 'f' and r.relname = 'projects' order by 1",
    )
    .fetch_all(target.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get("tbl"), r.get("valid")))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_deferred_validation_drops_the_keys_for_the_copy_and_validates_them_after() {
    let f = fixture(Backend::Postgres, 6_000).await;
    let both_valid = vec![("school_projects".to_owned(), true), ("self_study_projects".to_owned(), true)];
    assert_eq!(keys(&f.target).await, both_valid);
    let mut deferred = backfill::Start { defer_fks: true, ..with_workers(500, 2) };
    // slow enough that the application's delete lands while the copy goes on
    deferred.pacing.pause_ms = 60;
    let held = backfill::begin(&f.target, &deferred).await.unwrap();
    let (target, mut deleted, mut during) = (f.target.clone(), false, None);
    let run = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |run, _| {
        if run.rows_read > 0 && !deleted {
            deleted = true;
            let target = target.clone();
            // the application deletes a copied project while the keys are away, and a start
            // meanwhile accepts the target without them
            during = Some(tokio::spawn(async move {
                let copied: i64 = sqlx::query_scalar("select min(project_id) from school_projects")
                    .fetch_one(target.pool())
                    .await
                    .unwrap();
                sqlx::query("delete from projects where id = $1")
                    .bind(copied)
                    .execute(target.pool())
                    .await
                    .unwrap();
                (keys(&target).await, sti_rollout::db::target_schema::check(&target).await.unwrap())
            }));
        }
    })
    .await
    .unwrap();
    let (keys_during, differences) = during.unwrap().await.unwrap();
    assert_eq!(keys_during, vec![], "no keys while copying");
    assert_eq!(differences, vec![], "the schema check accepts keys a run dropped");

    assert_eq!(run.state, RunState::Completed, "{:?}", run.error);
    assert!(run.fk_validation_ms.is_some_and(|ms| ms >= 0));
    assert_eq!(
        count(&f.control, "select count(*) from runs where fk_validation_ms is not null and workers = 2")
            .await,
        1,
        "the mirror shows the validation's time and the workers"
    );
    assert_eq!(keys(&f.target).await, both_valid, "back and validated");
    assert_eq!(
        count(&f.target, "select count(*) from school_projects s where not exists (select 1 from projects p where p.id = s.project_id)")
            .await,
        0,
        "the row whose project was deleted went, as the cascade would have taken it"
    );
    assert!(verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_cancelled_deferred_run_puts_the_keys_back_not_valid_and_the_next_validates() {
    let f = fixture(Backend::Postgres, 3_000).await;
    let mut deferred = backfill::Start { defer_fks: true, ..start(100, 30_000) };
    deferred.pacing.pause_ms = 20;
    let held = backfill::begin(&f.target, &deferred).await.unwrap();
    let run_id = held.run.id;
    let target = f.target.clone();
    let run = backfill::run(&f.target, None, DEV, held, &mut |run, chunk| {
        if chunk.is_some() && run.chunks == 3 {
            let target = target.clone();
            tokio::spawn(async move { runs::request(&target, run_id, RunRequest::Cancel).await.unwrap() });
        }
    })
    .await
    .unwrap();
    assert_eq!(run.state, RunState::Cancelled);
    assert_eq!(
        keys(&f.target).await,
        vec![("school_projects".to_owned(), false), ("self_study_projects".to_owned(), false)],
        "back at once, not valid yet"
    );
    let next = crate::engine_runs::run_backfill(&f, 1000).await;
    assert_eq!(next.state, RunState::Completed);
    assert!(next.fk_validation_ms.is_some(), "the next backfill validated them");
    assert!(keys(&f.target).await.iter().all(|(_, valid)| *valid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_deferred_validation_with_a_sentence() {
    let f = fixture(Backend::Sqlite, 100).await;
    let refused = backfill::begin(&f.target, &backfill::Start { defer_fks: true, ..start(100, 30_000) })
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("needs a PostgreSQL target"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sti_rollout_worker_joins_a_cli_backfill_from_another_process() {
    use crate::support::{cli, config_vars, spawn_cli, stderr};
    let f = fixture(Backend::Postgres, 20_000).await;
    let vars = config_vars(&f.config);
    let nothing = cli(&["worker", "--env", "dev"], &vars);
    assert_eq!(nothing.status.code(), Some(1));
    assert_eq!(stderr(&nothing).trim(), "error: dev: no run is active");

    // a worker waiting on another process, before the run exists (it joins before the holder
    // cut the range, and waits for the slices), and a backfill in slices
    let mut joined = spawn_cli(&["worker", "--env", "dev", "--wait", "--workers", "2"], &vars);
    let holder =
        cli(&["backfill", "--env", "dev", "--chunk", "200", "--pause-ms", "100", "--workers", "2"], &vars);
    assert!(holder.status.success(), "{}", stderr(&holder));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = joined.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            joined.kill().unwrap();
            panic!("the worker did not leave after the run completed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success());
    let run = runs::get(&f.target, 1).await.unwrap();
    assert_eq!((run.state, run.rows_read, run.workers), (RunState::Completed, 20_000, 2));
    let processes =
        count(&f.target, "select count(distinct split_part(worker, '#', 1)) from sti_backfill_chunks").await;
    assert_eq!(processes, 2, "the backfill's and the worker's");
    assert_eq!(tiles(&f.target, 1, 20_000).await, Vec::<String>::new());

    // a run of one loop cannot be joined: the sentence says how to spread one
    let single =
        spawn_cli(&["backfill", "--env", "dev", "--restart", "--chunk", "100", "--pause-ms", "200"], &vars);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while count(&f.target, "select count(*) from sti_backfill_runs where active_slot = 1").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the second backfill did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = cli(&["worker", "--env", "dev"], &vars);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("runs as one loop"), "{}", stderr(&refused));
    let mut single = single;
    single.kill().unwrap();
    single.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_worker_that_joins_before_the_range_is_cut_waits_for_the_slices() {
    use sti_rollout::engine::workers;
    let f = fixture(Backend::Postgres, 5_000).await;
    let held = backfill::begin(&f.target, &with_workers(200, 2)).await.unwrap();
    // a replica's crew sees the run before its holder cut the range
    let crew = workers::Crew::joining(&f.target, &f.control, DEV, held.run.id, Default::default());
    let early = workers::join(&crew, 1);
    assert_eq!(early.len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let run = tokio::time::timeout(
        Duration::from_secs(30),
        backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(run.state, RunState::Completed);
    let mut tally = workers::Tally::default();
    for worker in early {
        tally = worker.await.unwrap().unwrap();
    }
    // this process already had a crew on the run, so the holder started none: the early one
    // copied it all
    assert_eq!(tally.rows_read, 5_000, "the early worker left before the slices were cut");
}
