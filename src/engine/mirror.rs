//! Mirroring runs into the control database. The target database holds the truth: the mirror
//! is written off the runner's path (a locked control database costs a stale console view,
//! never a slower run), never goes back in time (every upsert is guarded by `updated_at`), and is
//! reconciled from the target when the console starts and before a run begins, which fills what
//! a lost write, a locked control database or a kill between commit and mirror left out.

use super::backfill::ChunkOutcome;
use super::runs::{self, RunRecord};
use super::EngineError;
use crate::db::Database;
use crate::domain::environment::Environment;
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Upserts the run's current state, unless the mirror already holds a newer one; logs a
/// failure (the next reconcile mends it).
pub async fn record(control: Option<&Database>, env: Environment, run: &RunRecord) {
    let Some(control) = control else { return };
    let written = async {
        let mut conn = control.pool().acquire().await?;
        upsert_run(&mut conn, env, run).await
    };
    if let Err(error) = written.await {
        tracing::warn!(environment = %env, run_id = run.id, %error, "cannot mirror the run into the control database");
    }
}

async fn upsert_run(
    control: &mut sqlx::AnyConnection,
    env: Environment,
    run: &RunRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into runs (environment, run_id, kind, state, started_by, chunk_size, low_id, high_id,
            checkpoint, chunks, rows_read, school_created, self_study_created, school_skipped,
            self_study_skipped, errors, error, created_at, updated_at, finished_at, requested, pause_ms,
            lease_owner, lease_expires_at, rows_expected, hold_kind, hold_reason, hold_label, hold_since, hold_next_try,
            workers, fk_validation_ms, lease_ms, hold_tries, hold_gives_up_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
            $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)
         on conflict (environment, run_id) do update set
            kind = excluded.kind, state = excluded.state, started_by = excluded.started_by,
            chunk_size = excluded.chunk_size, low_id = excluded.low_id, high_id = excluded.high_id,
            checkpoint = excluded.checkpoint, chunks = excluded.chunks, rows_read = excluded.rows_read,
            school_created = excluded.school_created, self_study_created = excluded.self_study_created,
            school_skipped = excluded.school_skipped, self_study_skipped = excluded.self_study_skipped,
            errors = excluded.errors, error = excluded.error, created_at = excluded.created_at,
            updated_at = excluded.updated_at, finished_at = excluded.finished_at,
            requested = excluded.requested, pause_ms = excluded.pause_ms,
            lease_owner = excluded.lease_owner, lease_expires_at = excluded.lease_expires_at,
            rows_expected = excluded.rows_expected, hold_kind = excluded.hold_kind,
            hold_reason = excluded.hold_reason, hold_label = excluded.hold_label, hold_since = excluded.hold_since,
            hold_next_try = excluded.hold_next_try, workers = excluded.workers,
            fk_validation_ms = excluded.fk_validation_ms, lease_ms = excluded.lease_ms,
            hold_tries = excluded.hold_tries, hold_gives_up_at = excluded.hold_gives_up_at
         where runs.updated_at <= excluded.updated_at",
    )
    .bind(env.as_str())
    .bind(run.id)
    .bind(run.kind.as_str())
    .bind(run.state.as_str())
    .bind(&run.started_by)
    .bind(run.pacing.chunk_size)
    .bind(run.low_id)
    .bind(run.high_id)
    .bind(run.checkpoint)
    .bind(run.chunks)
    .bind(run.rows_read)
    .bind(run.school_created)
    .bind(run.self_study_created)
    .bind(run.school_skipped)
    .bind(run.self_study_skipped)
    .bind(run.errors)
    .bind(&run.error)
    .bind(run.created_at)
    .bind(run.updated_at)
    .bind(run.finished_at)
    .bind(run.requested.map(|r| r.as_str()))
    .bind(run.pacing.pause_ms)
    .bind(&run.lease_owner)
    .bind(run.lease_expires_at)
    .bind(run.rows_expected)
    .bind(run.hold.as_ref().map(|h| h.kind.as_str()))
    .bind(run.hold.as_ref().map(|h| h.reason.as_str()))
    .bind(run.hold.as_ref().map(|h| h.label.as_str()))
    .bind(run.hold.as_ref().map(|h| h.since_ms))
    .bind(run.hold.as_ref().map(|h| h.next_try_ms))
    .bind(run.workers)
    .bind(run.fk_validation_ms)
    .bind(run.lease_ms)
    .bind(run.hold.as_ref().map(|h| h.tries))
    .bind(run.hold.as_ref().and_then(|h| h.gives_up_at_ms))
    .execute(control)
    .await?;
    Ok(())
}

/// Appends a committed chunk to the mirrored ledger (once: a chunk already there stays);
/// whether it was new.
async fn insert_chunk(
    control: &mut sqlx::AnyConnection,
    env: Environment,
    run_id: i64,
    chunk: &ChunkOutcome,
    committed_at: i64,
    worker: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "insert into run_chunks (environment, run_id, chunk_no, from_id, to_id, rows_read, created,
            skipped, errors, duration_ms, school_created, self_study_created, committed_at, worker)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         on conflict (environment, run_id, chunk_no) do nothing",
    )
    .bind(env.as_str())
    .bind(run_id)
    .bind(chunk.chunk_no)
    .bind(chunk.from_id)
    .bind(chunk.to_id)
    .bind(chunk.rows_read)
    .bind(chunk.school_created + chunk.self_study_created)
    .bind(chunk.school_skipped + chunk.self_study_skipped)
    .bind(chunk.errors)
    .bind(chunk.duration_ms)
    .bind(chunk.school_created)
    .bind(chunk.self_study_created)
    .bind(committed_at)
    .bind(worker)
    .execute(control)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// What a reconcile brought into the mirror.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Runs whose mirrored state was behind the target's, upserted.
    pub runs: usize,
    /// Ledger rows the mirror lacked.
    pub chunks: usize,
}

/// Brings `env`'s mirror up to the target: every run's state, and every ledger row the mirror
/// lacks (a hole left by a lost write is filled too, whatever its place).
pub async fn reconcile(
    control: &Database,
    env: Environment,
    target: &Database,
) -> Result<Reconciled, EngineError> {
    let in_target = runs::list(target, i64::MAX).await?;
    // what the mirror holds of each run: its state's time and lease, and its ledger rows
    let mirrored: BTreeMap<i64, (i64, Option<i64>, i64)> = sqlx::query(
        "select r.run_id, r.updated_at, r.lease_expires_at,
                (select count(*) from run_chunks c where c.environment = r.environment and c.run_id = r.run_id) as chunks
         from runs r where r.environment = $1",
    )
    .bind(env.as_str())
    .fetch_all(control.pool())
    .await?
    .iter()
    .map(|row| {
        Ok((row.try_get("run_id")?, (row.try_get("updated_at")?, row.try_get("lease_expires_at")?, row.try_get("chunks")?)))
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let mut done = Reconciled::default();
    // oldest first: a run's row comes before its chunks (they reference it)
    for run in in_target.iter().rev() {
        let seen = mirrored.get(&run.id);
        // only what is behind is written: a start or a CLI command takes no write lock on the
        // control database when the mirror is current
        let state_behind = seen.is_none_or(|&(updated_at, lease, _)| {
            (updated_at, lease) != (run.updated_at, run.lease_expires_at)
        });
        let ledger_behind = seen.map_or(0, |&(_, _, chunks)| chunks) < run.chunks;
        if !state_behind && !ledger_behind {
            continue;
        }
        let missing = if ledger_behind { ledger(target, run.id).await? } else { Vec::new() };
        // the run's state and its ledger in one transaction: a page never shows a run completed
        // with half its chunks
        let mut tx = control.begin_write().await?;
        if state_behind {
            upsert_run(&mut tx, env, run).await?;
            done.runs += 1;
        }
        for (chunk, committed_at, worker) in &missing {
            if insert_chunk(&mut tx, env, run.id, chunk, *committed_at, worker.as_deref()).await? {
                done.chunks += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(done)
}

/// A run's ledger in the target, with each chunk's commit time and worker.
async fn ledger(
    target: &Database,
    run_id: i64,
) -> Result<Vec<(ChunkOutcome, i64, Option<String>)>, EngineError> {
    let rows = sqlx::query(
        "select chunk_no, from_id, to_id, rows_read, school_created, self_study_created, school_skipped,
                self_study_skipped, errors, duration_ms, committed_at, worker
         from sti_backfill_chunks where run_id = $1 order by chunk_no",
    )
    .bind(run_id)
    .fetch_all(target.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                ChunkOutcome {
                    chunk_no: row.try_get("chunk_no")?,
                    from_id: row.try_get("from_id")?,
                    to_id: row.try_get("to_id")?,
                    rows_read: row.try_get("rows_read")?,
                    school_created: row.try_get("school_created")?,
                    self_study_created: row.try_get("self_study_created")?,
                    school_skipped: row.try_get("school_skipped")?,
                    self_study_skipped: row.try_get("self_study_skipped")?,
                    errors: row.try_get("errors")?,
                    duration_ms: row.try_get("duration_ms")?,
                },
                row.try_get("committed_at")?,
                row.try_get("worker")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(EngineError::from)
}

/// Reconciles when the mirror is behind the target by the cheap measure of how many runs each
/// holds and the newest state's time; every console replica calls it every few seconds, so a
/// run that ended while the control database was away (its runner's writes lost, its writer
/// gone) shows its end — on the pages, in `/metrics`, to the webhooks — within seconds of the
/// control database's return. Whether it reconciled.
pub async fn catch_up(control: &Database, env: Environment, target: &Database) -> Result<bool, EngineError> {
    let (runs_there, newest_there): (i64, Option<i64>) =
        sqlx::query_as("select count(*), max(updated_at) from sti_backfill_runs")
            .fetch_one(target.pool())
            .await?;
    let (runs_here, newest_here): (i64, Option<i64>) =
        sqlx::query_as("select count(*), max(updated_at) from runs where environment = $1")
            .bind(env.as_str())
            .fetch_one(control.pool())
            .await?;
    if (runs_there, newest_there) == (runs_here, newest_here) {
        return Ok(false);
    }
    let done = reconcile(control, env, target).await?;
    if done.runs > 0 || done.chunks > 0 {
        tracing::info!(environment = %env, runs = done.runs, chunks = done.chunks, "the mirror caught up with the target");
    }
    Ok(true)
}

/// Reconciles, logging instead of failing: the mirror is a view, and the caller's work (a start,
/// a run) does not depend on it.
pub async fn reconcile_or_log(control: &Database, env: Environment, target: &Database) {
    match reconcile(control, env, target).await {
        Ok(done) if done.chunks > 0 => {
            tracing::info!(environment = %env, runs = done.runs, chunks = done.chunks, "the mirror caught up with the target");
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(environment = %env, %error, "cannot reconcile the mirror with the target")
        }
    }
}

/// What the runner hands the mirror writer.
enum Update {
    Run(RunRecord),
    Chunk(RunRecord, ChunkOutcome, String),
}

/// A run's mirror writer: a task that writes what the runner sends, in order, latest state
/// winning, while the runner goes on. After a failed write it reconciles from the target once
/// the control database answers again.
pub struct Writer {
    sender: Option<mpsc::UnboundedSender<Update>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Writer {
    /// A writer into `control` (none: nothing is mirrored) for `env`, whose target is `target`.
    pub fn start(control: Option<&Database>, env: Environment, target: &Database) -> Self {
        let Some(control) = control.cloned() else { return Self { sender: None, task: None } };
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_all(control, env, target.clone(), receiver));
        Self { sender: Some(sender), task: Some(task) }
    }

    /// The run's current state.
    pub fn run(&self, run: &RunRecord) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Update::Run(run.clone()));
        }
    }

    /// A committed chunk, the worker that committed it, and the run's state after it.
    pub fn chunk(&self, run: &RunRecord, chunk: &ChunkOutcome, worker: &str) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Update::Chunk(run.clone(), *chunk, worker.to_owned()));
        }
    }

    /// Waits up to `within` for everything sent to be written; what is left is written later
    /// by the task (in a console) or by the next reconcile. Returns whether it was all written.
    pub async fn finish(mut self, within: Duration, env: Environment) -> bool {
        self.sender = None;
        let Some(task) = self.task.take() else { return true };
        match tokio::time::timeout(within, task).await {
            Ok(_) => true,
            Err(_) => {
                tracing::warn!(environment = %env, waited_s = within.as_secs(),
                    "the control database has not taken the run's last states yet; the console shows them \
                     once it answers, and reconciles from the target at its next start or run");
                false
            }
        }
    }
}

async fn write_all(
    control: Database,
    env: Environment,
    target: Database,
    mut receiver: mpsc::UnboundedReceiver<Update>,
) {
    let mut behind = false;
    while let Some(first) = receiver.recv().await {
        // everything queued while the last write waited goes in one turn: every chunk, and
        // the run's latest state only
        let mut chunks = Vec::new();
        let mut latest = None;
        let mut take = |update| match update {
            Update::Run(run) => latest = Some(run),
            Update::Chunk(run, chunk, worker) => {
                chunks.push((run.id, chunk, worker));
                latest = Some(run);
            }
        };
        take(first);
        while let Ok(more) = receiver.try_recv() {
            take(more);
        }
        let Some(run) = latest else { continue };
        let written = async {
            // one transaction, as in `reconcile`: the state never runs ahead of its ledger
            let mut tx = control.begin_write().await?;
            upsert_run(&mut tx, env, &run).await?;
            for (run_id, chunk, worker) in &chunks {
                insert_chunk(&mut tx, env, *run_id, chunk, crate::db::now_ms(), Some(worker)).await?;
            }
            tx.commit().await
        }
        .await;
        match written {
            Ok(()) if behind => {
                behind = reconcile(&control, env, &target).await.is_err();
            }
            Ok(()) => {}
            Err(error) => {
                if !behind {
                    tracing::warn!(environment = %env, run_id = run.id, %error,
                        "cannot mirror the run into the control database; the run goes on, and the mirror catches up when it answers");
                }
                behind = true;
            }
        }
    }
}
