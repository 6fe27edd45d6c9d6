//! The backfill run: one idempotent chunk step, and the loop around it that follows the run's
//! pacing and the operator's requests.

use super::classify::{classified, insert_dead_letters_from, Subtype};
use super::runs::{self, Held, NewRun};
use super::{mirror, now_ms, EngineError};
use crate::db::{target, Database, Dialect};
use crate::domain::environment::Environment;
use crate::domain::pacing::Pacing;
use crate::domain::run::{RunKind, RunRequest, RunState};
use serde::Serialize;
use sqlx::Row;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What one committed chunk did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChunkOutcome {
    pub chunk_no: i64,
    /// Exclusive lower key.
    pub from_id: i64,
    /// Inclusive upper key.
    pub to_id: i64,
    pub rows_read: i64,
    pub school_created: i64,
    pub self_study_created: i64,
    pub school_skipped: i64,
    pub self_study_skipped: i64,
    pub errors: i64,
    pub duration_ms: i64,
}

/// Copies the legacy rows with ids in `(from, to]` into the subtype tables, records dirty rows,
/// writes the ledger row and moves the checkpoint — all in one transaction, which commits only
/// if this runner still holds the run's fencing token.
///
/// Rows already in a subtype table count as skipped; the counts come from primary-key range
/// counts, so identification runs only inside the inserts (once per subtype) and the dead-letter
/// insert.
pub async fn backfill_chunk(
    db: &Database,
    held: &Held,
    from: i64,
    to: i64,
) -> Result<ChunkOutcome, EngineError> {
    let started = Instant::now();
    let mut tx = db.begin_write().await?;
    let counts = match db.dialect() {
        Dialect::Postgres => copy_chunk_postgres(&mut tx, held.run.id, from, to).await?,
        Dialect::Sqlite => copy_chunk_sqlite(&mut tx, held.run.id, from, to).await?,
    };
    let mut outcome = ChunkOutcome {
        chunk_no: held.run.chunks + 1,
        from_id: from,
        to_id: to,
        rows_read: counts.rows_read,
        school_created: counts.school_created,
        self_study_created: counts.self_study_created,
        school_skipped: counts.school_present,
        self_study_skipped: counts.self_study_present,
        errors: counts.errors,
        duration_ms: elapsed_ms(started),
    };
    record_chunk(&mut tx, db.dialect(), held, &outcome).await?;
    tx.commit().await?;
    // the ledger row holds the time up to its own write; the caller sizes the next chunk by
    // the time through the commit, where a slow disk or a replica wait shows
    outcome.duration_ms = elapsed_ms(started);
    Ok(outcome)
}

pub(super) fn elapsed_ms(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// What copying one chunk found and did.
struct ChunkCounts {
    rows_read: i64,
    school_present: i64,
    self_study_present: i64,
    school_created: i64,
    self_study_created: i64,
    errors: i64,
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// PostgreSQL: one statement. The chunk is identified once into a materialized CTE and three
/// data-modifying CTEs write from it; every part sees the snapshot from before the statement, so
/// the presence counts are those the inserts met.
async fn copy_chunk_postgres(
    tx: &mut Tx<'_>,
    run_id: i64,
    from: i64,
    to: i64,
) -> Result<ChunkCounts, EngineError> {
    let rows = classified();
    let school = Subtype::School.insert_from("c", "$3", true);
    let self_study = Subtype::SelfStudy.insert_from("c", "$3", true);
    let dead_letters = insert_dead_letters_from("c", "$3", "$4");
    let row = sqlx::query(&format!(
        "with c as materialized {rows},
         s as ({school} returning 1),
         t as ({self_study} returning 1),
         d as ({dead_letters} returning 1)
         select (select count(*) from c) as rows_read,
                (select count(*) from school_projects where project_id > $1 and project_id <= $2) as school_present,
                (select count(*) from self_study_projects where project_id > $1 and project_id <= $2) as self_study_present,
                (select count(*) from s) as school_created,
                (select count(*) from t) as self_study_created,
                (select count(*) from d) as errors"
    ))
    .bind(from)
    .bind(to)
    .bind(run_id)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(ChunkCounts {
        rows_read: row.try_get("rows_read")?,
        school_present: row.try_get("school_present")?,
        self_study_present: row.try_get("self_study_present")?,
        school_created: row.try_get("school_created")?,
        self_study_created: row.try_get("self_study_created")?,
        errors: row.try_get("errors")?,
    })
}

/// SQLite (in-process, no round trips): primary-key range counts, one insert per subtype, and
/// the dead-letter insert.
async fn copy_chunk_sqlite(
    tx: &mut Tx<'_>,
    run_id: i64,
    from: i64,
    to: i64,
) -> Result<ChunkCounts, EngineError> {
    let rows = classified();
    let counts = sqlx::query(
        "select (select count(*) from projects where id > $1 and id <= $2) as rows_read,
                (select count(*) from school_projects where project_id > $1 and project_id <= $2) as school,
                (select count(*) from self_study_projects where project_id > $1 and project_id <= $2) as self_study",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&mut **tx)
    .await?;
    let (rows_read, school_present, self_study_present): (i64, i64, i64) =
        (counts.try_get("rows_read")?, counts.try_get("school")?, counts.try_get("self_study")?);

    let mut created = [0_i64; 2];
    for (i, subtype) in Subtype::ALL.into_iter().enumerate() {
        created[i] = sqlx::query(&subtype.insert_from(&rows, "$3", true))
            .bind(from)
            .bind(to)
            .bind(run_id)
            .execute(&mut **tx)
            .await?
            .rows_affected() as i64;
    }
    let [school_created, self_study_created] = created;

    // always, as on PostgreSQL: a row can be rejected and still be counted present (its
    // subtype row predates a change that made it dirty), so the counts cannot tell
    let errors = sqlx::query(&insert_dead_letters_from(&rows, "$3", "$4"))
        .bind(from)
        .bind(to)
        .bind(run_id)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected() as i64;
    Ok(ChunkCounts {
        rows_read,
        school_present,
        self_study_present,
        school_created,
        self_study_created,
        errors,
    })
}

/// Writes the ledger row and moves the checkpoint, fenced: zero rows updated means another
/// runner took the run over, or the run was ended under this runner (it is no longer running
/// in the active slot), and the whole chunk is rolled back. Times are the database's.
pub(super) async fn record_chunk(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    held: &Held,
    chunk: &ChunkOutcome,
) -> Result<(), EngineError> {
    let now = dialect.now_ms_sql();
    let moved = sqlx::query(&format!(
        "update sti_backfill_runs
         set checkpoint = $1, chunks = chunks + 1, rows_read = rows_read + $2,
             school_created = school_created + $3, self_study_created = self_study_created + $4,
             school_skipped = school_skipped + $5, self_study_skipped = self_study_skipped + $6,
             errors = errors + $7, lease_expires_at = {now} + $8, updated_at = {now}
         where id = $9 and fencing_token = $10 and checkpoint = $11
           and active_slot = 1 and state = 'running'"
    ))
    .bind(chunk.to_id)
    .bind(chunk.rows_read)
    .bind(chunk.school_created)
    .bind(chunk.self_study_created)
    .bind(chunk.school_skipped)
    .bind(chunk.self_study_skipped)
    .bind(chunk.errors)
    .bind(held.lease_ms)
    .bind(held.run.id)
    .bind(held.token)
    .bind(chunk.from_id)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(EngineError::LeaseLost { run_id: held.run.id });
    }
    sqlx::query(&format!(
        "insert into sti_backfill_chunks (run_id, chunk_no, from_id, to_id, rows_read, school_created,
            self_study_created, school_skipped, self_study_skipped, errors, duration_ms, committed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, {now})"
    ))
    .bind(held.run.id)
    .bind(chunk.chunk_no)
    .bind(chunk.from_id)
    .bind(chunk.to_id)
    .bind(chunk.rows_read)
    .bind(chunk.school_created)
    .bind(chunk.self_study_created)
    .bind(chunk.school_skipped)
    .bind(chunk.self_study_skipped)
    .bind(chunk.errors)
    .bind(chunk.duration_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How a backfill starts.
#[derive(Clone, Debug)]
pub struct Start {
    pub env: Environment,
    pub started_by: String,
    pub pacing: Pacing,
    /// Start a new run after this key (`Some(0)`: the whole range). `None`: take over the active
    /// run, else continue a failed run from its checkpoint, else start at the beginning.
    pub resume_from: Option<i64>,
    pub lease_ms: i64,
}

/// Starts a new backfill run, or takes over the active one whose runner died.
pub async fn begin(db: &Database, start: &Start) -> Result<Held, EngineError> {
    carry_out(db, &plan(db, start).await?, start).await
}

/// How a backfill would begin now (see [`plan_begin`]).
pub async fn plan(db: &Database, start: &Start) -> Result<Beginning, EngineError> {
    plan_begin(db, RunKind::Backfill, start, target::max_project_id(db).await?.unwrap_or(0)).await
}

/// How a run begins, decided once from what the target holds: a caller that checks a gate for
/// new runs checks it on this decision, and [`carry_out`] does what was decided or fails — it
/// never decides again (the active run it meant to take over may have ended in between).
#[derive(Clone, Debug)]
pub enum Beginning {
    /// Take over the active run of the same kind whose runner died.
    TakeOver { run_id: i64 },
    /// Create this run.
    New(NewRun),
}

/// Shared by backfill and rollback: take-over of the active run, or a new run over `(low,
/// high]` — after a failed run's checkpoint, or from the first key.
pub async fn plan_begin(
    db: &Database,
    kind: RunKind,
    start: &Start,
    high: i64,
) -> Result<Beginning, EngineError> {
    if let Some(active) = runs::active(db).await? {
        if active.kind == kind && start.resume_from.is_none() {
            return Ok(Beginning::TakeOver { run_id: active.id });
        }
    }
    let (low, high) = match start.resume_from {
        Some(from) if from < 0 => return Err(EngineError::NegativeResume(from)),
        Some(from) if from > high => return Err(EngineError::ResumeBeyondEnd { given: from, last: high }),
        Some(from) => (from, high),
        // what a failed run committed stays committed: go on after it, over its range and
        // whatever was added since
        None => match runs::latest(db, kind).await? {
            Some(failed) if failed.state == RunState::Failed => {
                tracing::info!(environment = %start.env, failed_run = failed.id, checkpoint = failed.checkpoint,
                    "continuing after the failed run's checkpoint");
                (failed.checkpoint, high.max(failed.high_id))
            }
            _ => (super::keys::start_before(db, super::keys::walked_by(kind)).await?, high),
        },
    };
    Ok(Beginning::New(NewRun {
        kind,
        started_by: start.started_by.clone(),
        pacing: start.pacing,
        low_id: low,
        high_id: high,
        // counted beside the first chunks (drive): on a big table the count takes as long as a
        // few chunks, and nothing needs it before the run goes
        rows_expected: None,
        lease_ms: start.lease_ms,
    }))
}

/// Does what [`plan_begin`] decided: a take-over fails when the run is no longer active or its
/// lease is live, a new run when another became active.
pub async fn carry_out(db: &Database, beginning: &Beginning, start: &Start) -> Result<Held, EngineError> {
    let owner = super::runner_name();
    match beginning {
        Beginning::TakeOver { run_id } => {
            tracing::info!(environment = %start.env, run_id, "taking over the active run");
            runs::take_over(db, *run_id, &owner, start.lease_ms).await
        }
        Beginning::New(new) => runs::create(db, new, &owner).await,
    }
}

/// [`plan_begin`] and [`carry_out`] in one.
pub async fn begin_run(db: &Database, kind: RunKind, start: &Start, high: i64) -> Result<Held, EngineError> {
    carry_out(db, &plan_begin(db, kind, start, high).await?, start).await
}

/// What the loop tells its caller after every chunk and state change.
pub type Observer<'a> = dyn FnMut(&runs::RunRecord, Option<&ChunkOutcome>) + Send + 'a;

/// One chunk's work, boxed so the loop can take either step.
pub(super) type StepFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ChunkOutcome, EngineError>> + Send + 'a>>;

/// The step a run repeats: a backfill chunk or a rollback chunk.
pub(super) type Step = for<'a> fn(&'a Database, &'a Held, i64, i64) -> StepFuture<'a>;

fn backfill_step<'a>(db: &'a Database, held: &'a Held, from: i64, to: i64) -> StepFuture<'a> {
    Box::pin(backfill_chunk(db, held, from, to))
}

/// Runs a held backfill run to its end.
pub async fn run(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    held: Held,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    drive(db, control, env, held, backfill_step, observer).await
}

/// The loop: read requests and pacing, do one chunk, mirror, pause; until the frozen upper
/// bound is reached, the run is cancelled, or it fails.
pub(super) async fn drive(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    held: Held,
    step: Step,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let span =
        tracing::info_span!("run", environment = %env, run_id = held.run.id, kind = held.run.kind.as_str());
    drive_in_span(db, control, env, held, step, observer).instrument(span).await
}

/// The loop, and the run's end when it stops on an error: whatever failed — a chunk, reading
/// the run, renewing its lease, clearing a request — the run is marked failed, or, when even
/// that cannot be written, left to its lease with the log saying so.
async fn drive_in_span(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    mut held: Held,
    step: Step,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let writer = mirror::Writer::start(control, env, db);
    if held.run.rows_expected.is_none() {
        tokio::spawn(count_rows_expected(db.clone(), held.run.clone()));
    }
    let result = match drive_loop(db, control, env, &mut held, step, &writer, observer).await {
        Ok(run) => Ok(run),
        Err(EngineError::LeaseLost { run_id }) => Err(EngineError::LeaseLost { run_id }),
        Err(error) => {
            end_as_failed(db, &writer, &mut held, &error, observer).await;
            Err(error)
        }
    };
    writer.finish(MIRROR_FLUSH, env).await;
    result
}

/// Counts the rows the run expects, for its progress and ETA, and records the count; a run
/// that ends first simply goes by its keys.
async fn count_rows_expected(db: Database, run: runs::RunRecord) {
    let counted = async {
        let rows = super::keys::rows_between(&db, run.kind, run.low_id, run.high_id).await?;
        runs::set_rows_expected(&db, run.id, rows).await
    };
    if let Err(error) = counted.await {
        tracing::warn!(run_id = run.id, %error, "cannot count the rows the run expects; its progress goes by its keys");
    }
}

/// How long a run's end waits for the control database to take its last states.
const MIRROR_FLUSH: Duration = Duration::from_secs(5);

/// Marks the run failed with `error` as its reason. The error may be the connection itself,
/// so the write is tried a few times, about three seconds in all; a runner that lost its lease
/// writes nothing.
async fn end_as_failed(
    db: &Database,
    writer: &mirror::Writer,
    held: &mut Held,
    error: &EngineError,
    observer: &mut Observer<'_>,
) {
    let message = error.to_string();
    let mut last = None;
    for attempt in 0..4_u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        // held in memory is a state that was written (every non-final state may fail), and the
        // write is fenced by the token
        if held.run.state.is_final() {
            return;
        }
        match held.transition(db, RunState::Failed, Some(&message)).await {
            Ok(()) => {
                tracing::error!(%error, "the run failed and is marked failed; the next run continues after its checkpoint");
                writer.run(&held.run);
                observer(&held.run, None);
                return;
            }
            Err(EngineError::LeaseLost { .. }) => {
                tracing::error!(%error, "the run stopped; another runner holds it now, so it is theirs to end");
                return;
            }
            Err(e) => last = Some(e),
        }
    }
    let why = last.map(|e| e.to_string()).unwrap_or_default();
    tracing::error!(
        %error,
        cannot_mark_failed = %why,
        lease_seconds = held.lease_ms / 1000,
        "the run stopped but could not be marked failed: it stays active until its lease expires, then the console \
         shows its runner gone and offers to take it over"
    );
}

async fn drive_loop(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    held: &mut Held,
    step: Step,
    writer: &mirror::Writer,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let mut chunk_size = held.run.pacing.chunk_size;
    let mut operator_chunk = chunk_size;
    // a third of the lease: two renewals may be missed before it runs out
    let renew_every = Duration::from_millis((held.lease_ms / 3).max(50) as u64);
    let mut last_renewal = Instant::now();
    observer(&held.run, None);
    loop {
        held.refresh(db).await?;
        if held.run.pacing.chunk_size != operator_chunk {
            // the operator changed it while we ran: theirs wins over the adaptive size
            operator_chunk = held.run.pacing.chunk_size;
            chunk_size = operator_chunk;
        }
        if let Some(request) = held.run.requested {
            let to = match (request, held.run.state) {
                (RunRequest::Pause, RunState::Running) => RunState::Paused,
                (RunRequest::Resume, RunState::Paused) => RunState::Running,
                (RunRequest::Cancel, _) => RunState::Cancelled,
                (_, state) => state,
            };
            if to != held.run.state {
                held.transition(db, to, None).await?;
            } else {
                clear_request(db, held).await?;
            }
            tracing::info!(request = request.as_str(), state = %held.run.state, "operator request applied");
            writer.run(&held.run);
            observer(&held.run, None);
            if held.run.state.is_final() {
                return Ok(held.run.clone());
            }
            continue;
        }
        if held.run.state == RunState::Paused {
            if last_renewal.elapsed() >= renew_every {
                keep_alive(db, writer, held).await?;
                last_renewal = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        if held.run.checkpoint >= held.run.high_id {
            held.transition(db, RunState::Completed, None).await?;
            writer.run(&held.run);
            observer(&held.run, None);
            return Ok(held.run.clone());
        }
        if held.run.kind == RunKind::Rollback {
            // the gate refuses the flag while this run is active; this catches a flag set around
            // it (by an override, or straight in the control database) before the next delete.
            // The flag lives in the control database, so it cannot be read in the chunk's own
            // transaction on the target.
            if let Some(control) = control {
                super::rollback::ensure_flag_off(control, env).await?;
            }
        }
        let from = held.run.checkpoint;
        let walked = super::keys::walked_by(held.run.kind);
        let to = super::keys::chunk_end(db, walked, from, chunk_size, held.run.high_id).await?;
        let chunk = step(db, held, from, to).await?;
        tracing::debug!(chunk = chunk.chunk_no, from, to, duration_ms = chunk.duration_ms, "chunk committed");
        let pacing = Pacing { chunk_size, ..held.run.pacing };
        let next = pacing.next_chunk_size(chunk.rows_read, chunk.duration_ms.max(0) as u64);
        if next != chunk_size && runs::persist_chunk_size(db, held, operator_chunk, next).await? {
            // the run row holds the adapted size (a runner taking over starts from it, the
            // console shows it); an operator's change since stays theirs
            operator_chunk = next;
        }
        chunk_size = next;
        held.refresh(db).await?;
        writer.chunk(&held.run, &chunk);
        observer(&held.run, Some(&chunk));
        // the pause between chunks may outlast the lease (60 s against 30 s): renew on the way
        let mut left = Duration::from_millis(held.run.pacing.pause_ms.max(0) as u64);
        while !left.is_zero() {
            let step = left.min(renew_every);
            tokio::time::sleep(step).await;
            left -= step;
            if !left.is_zero() {
                keep_alive(db, writer, held).await?;
            }
        }
        last_renewal = Instant::now();
    }
}

/// Renews the lease and mirrors the run, so the console sees a live runner (a paused run, a
/// long pause between chunks) and never offers to take it over.
async fn keep_alive(db: &Database, writer: &mirror::Writer, held: &mut Held) -> Result<(), EngineError> {
    held.renew(db).await?;
    held.refresh(db).await?;
    writer.run(&held.run);
    Ok(())
}

/// Clears the request the runner read and acted on, and only that one: a request written since
/// (a cancel after a pause, the emergency stop's) stays for the next turn of the loop.
async fn clear_request(db: &Database, held: &Held) -> Result<(), EngineError> {
    sqlx::query(
        "update sti_backfill_runs set requested = null
         where id = $1 and fencing_token = $2 and requested = $3",
    )
    .bind(held.run.id)
    .bind(held.token)
    .bind(held.run.requested.map(RunRequest::as_str))
    .execute(db.pool())
    .await?;
    Ok(())
}
