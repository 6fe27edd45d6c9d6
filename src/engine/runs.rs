//! Run rows in the target database: creating a run under its lease, taking an expired lease
//! over, reading, listing, operator requests, and ending a run.

mod lease;

pub use lease::{busy, create, take_over, Held, NewRun, Renewal};

use super::EngineError;
use crate::db::Database;
use crate::domain::live::RunView;
use crate::domain::pacing::{Pacing, Progress};
use crate::domain::run::{Hold, RunKind, RunRequest, RunState};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

/// How long a lease lasts without renewal; every chunk renews it.
pub const DEFAULT_LEASE_MS: i64 = 30_000;

/// One run as the target database records it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub kind: RunKind,
    pub state: RunState,
    pub requested: Option<RunRequest>,
    pub started_by: String,
    pub pacing: Pacing,
    pub low_id: i64,
    pub high_id: i64,
    pub checkpoint: i64,
    /// Rows the run expected when it began (`None` for runs from before it was recorded).
    pub rows_expected: Option<i64>,
    pub fencing_token: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    /// How long the holder's lease runs from each renewal (renewed every third of it); `None`
    /// for runs from before it was kept.
    pub lease_ms: Option<i64>,
    pub chunks: i64,
    pub rows_read: i64,
    pub school_created: i64,
    pub self_study_created: i64,
    pub school_skipped: i64,
    pub self_study_skipped: i64,
    pub errors: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// A reconcile's ids, sorted (`None` for a backfill or rollback, which walk a key range).
    pub ids: Option<Vec<i64>>,
    /// How many workers each process that works on the run starts: 1, one loop over the
    /// range; more, the range is cut into slices they claim (`engine::slices`).
    pub workers: i64,
    /// Deferred validation (PostgreSQL): the subtype tables' foreign keys are dropped for the
    /// copy and added back, validated once, when it completes (`engine::deferred`).
    pub defer_fks: bool,
    /// How long adding them back and validating them took, once done.
    pub fk_validation_ms: Option<i64>,
    /// Why the runner holds between chunks, while it does (the runner's own knowledge: the
    /// database may not answer; the control database's mirror carries it).
    pub hold: Option<Hold>,
}

impl RunRecord {
    pub fn created(&self) -> i64 {
        self.school_created + self.self_study_created
    }

    pub fn skipped(&self) -> i64 {
        self.school_skipped + self.self_study_skipped
    }

    pub fn progress(&self) -> Progress {
        Progress::of_run(self.low_id, self.high_id, self.checkpoint, self.rows_read, self.rows_expected)
    }

    /// The run as the console sees it: what [`crate::domain::health::Health`] is derived from.
    pub fn view(&self) -> RunView {
        RunView {
            id: self.id,
            kind: self.kind,
            state: self.state,
            requested: self.requested,
            started_by: self.started_by.clone(),
            chunk_size: self.pacing.chunk_size,
            pause_ms: self.pacing.pause_ms,
            low_id: self.low_id,
            high_id: self.high_id,
            checkpoint: self.checkpoint,
            chunks: self.chunks,
            rows_read: self.rows_read,
            school_created: self.school_created,
            self_study_created: self.self_study_created,
            school_skipped: self.school_skipped,
            self_study_skipped: self.self_study_skipped,
            errors: self.errors,
            error: self.error.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
            lease_expires_at: self.lease_expires_at,
            lease_ms: self.lease_ms,
            rows_expected: self.rows_expected,
            workers: self.workers,
            fk_validation_ms: self.fk_validation_ms,
            hold: self.hold.clone(),
        }
    }

    pub(super) fn from_row(row: &AnyRow) -> Result<Self, EngineError> {
        let text = |column: &str| -> Result<String, EngineError> { Ok(row.try_get::<String, _>(column)?) };
        let kind = text("kind")?;
        let state = text("state")?;
        let ids: Option<Vec<i64>> = match row.try_get::<Option<String>, _>("ids")? {
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
                EngineError::Corrupt(format!("run has ids that are not a JSON list of ids: {e}"))
            })?),
            None => None,
        };
        let requested: Option<String> = row.try_get("requested")?;
        let corrupt =
            |what: &str, value: &str| EngineError::Corrupt(format!("run has an unknown {what} '{value}'"));
        Ok(Self {
            id: row.try_get("id")?,
            kind: match (RunKind::parse(&kind), &ids) {
                // a reconcile is stored as a backfill over its ids
                (Some(RunKind::Backfill), Some(_)) => RunKind::Reconcile,
                (Some(RunKind::Backfill | RunKind::Rollback), _) => {
                    RunKind::parse(&kind).unwrap_or(RunKind::Backfill)
                }
                _ => return Err(corrupt("kind", &kind)),
            },
            state: RunState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
            requested: match requested {
                Some(r) => Some(RunRequest::parse(&r).ok_or_else(|| corrupt("request", &r))?),
                None => None,
            },
            started_by: text("started_by")?,
            // validated as it is read back: a chunk size of 0 written by hand made a run that
            // never moved on
            pacing: Pacing::parse(
                row.try_get("chunk_size")?,
                row.try_get("pause_ms")?,
                row.try_get("target_chunk_ms")?,
            )
            .map_err(|e| EngineError::Corrupt(format!("run has a pacing that is not valid: {e}")))?,
            low_id: row.try_get("low_id")?,
            high_id: row.try_get("high_id")?,
            checkpoint: row.try_get("checkpoint")?,
            rows_expected: row.try_get("rows_expected")?,
            fencing_token: row.try_get("fencing_token")?,
            lease_owner: row.try_get("lease_owner")?,
            lease_expires_at: row.try_get("lease_expires_at")?,
            lease_ms: row.try_get("lease_ms")?,
            chunks: row.try_get("chunks")?,
            rows_read: row.try_get("rows_read")?,
            school_created: row.try_get("school_created")?,
            self_study_created: row.try_get("self_study_created")?,
            school_skipped: row.try_get("school_skipped")?,
            self_study_skipped: row.try_get("self_study_skipped")?,
            errors: row.try_get("errors")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            finished_at: row.try_get("finished_at")?,
            ids,
            workers: row.try_get("workers")?,
            defer_fks: row.try_get::<i64, _>("defer_fks")? == 1,
            fk_validation_ms: row.try_get("fk_validation_ms")?,
            hold: None,
        })
    }
}

pub(super) const COLUMNS: &str = "id, kind, state, requested, started_by, chunk_size, pause_ms, target_chunk_ms,
    low_id, high_id, checkpoint, rows_expected, fencing_token, lease_owner, lease_expires_at, lease_ms, chunks, rows_read,
    school_created, self_study_created, school_skipped, self_study_skipped, errors, error,
    created_at, updated_at, finished_at, ids, workers, defer_fks, fk_validation_ms";

/// The database's clock, in milliseconds since the Unix epoch.
pub async fn database_now(db: &Database) -> Result<i64, EngineError> {
    Ok(sqlx::query_scalar(&format!("select {}", db.dialect().now_ms_sql())).fetch_one(db.pool()).await?)
}

/// One run by id.
pub async fn get(db: &Database, run_id: i64) -> Result<RunRecord, EngineError> {
    let row = sqlx::query(&format!("select {COLUMNS} from sti_backfill_runs where id = $1"))
        .bind(run_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(EngineError::NoSuchRun(run_id))?;
    RunRecord::from_row(&row)
}

/// The active run (queued, running or paused), if any.
pub async fn active(db: &Database) -> Result<Option<RunRecord>, EngineError> {
    let row = sqlx::query(&format!("select {COLUMNS} from sti_backfill_runs where active_slot = 1"))
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(RunRecord::from_row).transpose()
}

/// Whether `run`'s runner is gone: its lease expired by the target's clock, or it was a process
/// of this host that no longer exists.
pub async fn abandoned(db: &Database, run: &RunRecord) -> Result<bool, EngineError> {
    if run.lease_owner.as_deref().is_some_and(crate::engine::runner_is_gone) {
        return Ok(true);
    }
    let now = database_now(db).await?;
    Ok(run.lease_expires_at.is_none_or(|expires| expires < now))
}

/// The newest run over a key range (a backfill or a rollback, not a reconcile of some ids).
pub async fn latest_over_range(db: &Database) -> Result<Option<RunRecord>, EngineError> {
    let row = sqlx::query(&format!(
        "select {COLUMNS} from sti_backfill_runs where ids is null order by id desc limit 1"
    ))
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(RunRecord::from_row).transpose()
}

/// The newest runs first.
pub async fn list(db: &Database, limit: i64) -> Result<Vec<RunRecord>, EngineError> {
    let rows = sqlx::query(&format!("select {COLUMNS} from sti_backfill_runs order by id desc limit $1"))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(RunRecord::from_row).collect()
}

/// Asks the active run to pause, resume or cancel; its runner acts at the next chunk boundary.
pub async fn request(db: &Database, run_id: i64, request: RunRequest) -> Result<RunRecord, EngineError> {
    let run = get(db, run_id).await?;
    request.target(run.state)?;
    sqlx::query(&format!(
        "update sti_backfill_runs set requested = $1, updated_at = {} where id = $2 and active_slot = 1",
        db.dialect().now_ms_sql()
    ))
    .bind(request.as_str())
    .bind(run_id)
    .execute(db.pool())
    .await?;
    get(db, run_id).await
}

/// Changes the pacing of a run; its runner reads it at the next chunk boundary.
pub async fn set_pacing(db: &Database, run_id: i64, pacing: Pacing) -> Result<RunRecord, EngineError> {
    let pacing = Pacing::parse(pacing.chunk_size, pacing.pause_ms, pacing.target_chunk_ms)?;
    sqlx::query(&format!(
        "update sti_backfill_runs set chunk_size = $1, pause_ms = $2, target_chunk_ms = $3, updated_at = {}
         where id = $4 and active_slot = 1",
        db.dialect().now_ms_sql()
    ))
    .bind(pacing.chunk_size)
    .bind(pacing.pause_ms)
    .bind(pacing.target_chunk_ms)
    .bind(run_id)
    .execute(db.pool())
    .await?;
    get(db, run_id).await
}

/// Records how many rows the run expects, once: a count that went on beside the run's first
/// chunks. Touches no column a runner fences on.
pub async fn set_rows_expected(db: &Database, run_id: i64, rows: i64) -> Result<(), EngineError> {
    // updated_at moves with it, so the mirror and its reconcile take the change
    sqlx::query(&format!(
        "update sti_backfill_runs set rows_expected = $1, updated_at = {}
         where id = $2 and rows_expected is null",
        db.dialect().now_ms_sql()
    ))
    .bind(rows)
    .bind(run_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records the adapted chunk size `size` in the run row, unless the operator changed it from
/// `seen` meanwhile; whether it was recorded.
pub async fn persist_chunk_size(
    db: &Database,
    held: &Held,
    seen: i64,
    size: i64,
) -> Result<bool, EngineError> {
    let written = sqlx::query(&format!(
        "update sti_backfill_runs set chunk_size = $1, updated_at = {}
         where id = $2 and fencing_token = $3 and active_slot = 1 and chunk_size = $4",
        db.dialect().now_ms_sql()
    ))
    .bind(size)
    .bind(held.run.id)
    .bind(held.token)
    .bind(seen)
    .execute(db.pool())
    .await?;
    Ok(written.rows_affected() == 1)
}
