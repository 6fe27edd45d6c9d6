//! Run rows in the target database: creating a run under its lease, taking an expired lease
//! over, reading, listing, operator requests, and ending a run.

use super::EngineError;
use crate::db::Database;
use crate::domain::pacing::{Pacing, Progress};
use crate::domain::policy::Policy;
use crate::domain::run::{Hold, RunKind, RunRequest, RunState};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::sync::Arc;

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

    fn from_row(row: &AnyRow) -> Result<Self, EngineError> {
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
            hold: None,
        })
    }
}

const COLUMNS: &str = "id, kind, state, requested, started_by, chunk_size, pause_ms, target_chunk_ms,
    low_id, high_id, checkpoint, rows_expected, fencing_token, lease_owner, lease_expires_at, chunks, rows_read,
    school_created, self_study_created, school_skipped, self_study_skipped, errors, error,
    created_at, updated_at, finished_at, ids";

/// What a new run covers and how it goes.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub kind: RunKind,
    pub started_by: String,
    pub pacing: Pacing,
    /// Exclusive lower bound: the run starts after this key.
    pub low_id: i64,
    /// Inclusive upper bound, frozen now.
    pub high_id: i64,
    /// Rows in the range, when known at creation (see [`RunRecord::rows_expected`]; the
    /// runner counts them beside its first chunks otherwise).
    pub rows_expected: Option<i64>,
    pub lease_ms: i64,
    /// A reconcile's ids, sorted.
    pub ids: Option<Vec<i64>>,
}

/// How the target stores a run's kind: a reconcile is a backfill with its ids (the kind's check
/// constraint predates it; rollback and provenance treat it as the backfill it is).
fn stored(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Rollback => "rollback",
        RunKind::Backfill | RunKind::Reconcile => "backfill",
    }
}

/// A run this runner holds the lease of.
#[derive(Clone, Debug)]
pub struct Held {
    pub run: RunRecord,
    pub owner: String,
    pub token: i64,
    pub lease_ms: i64,
    /// How the run meets faults and stress.
    pub policy: Arc<Policy>,
}

/// Creates a running run holding its lease, unless another run is active. Every time in the
/// row comes from the database's clock, so runners on machines whose clocks disagree still agree
/// on when a lease runs out.
pub async fn create(db: &Database, new: &NewRun, owner: &str) -> Result<Held, EngineError> {
    let now = db.dialect().now_ms_sql();
    let inserted = sqlx::query(&format!(
        "insert into sti_backfill_runs (kind, state, active_slot, started_by, chunk_size, pause_ms,
            target_chunk_ms, low_id, high_id, checkpoint, rows_expected, fencing_token, lease_owner,
            lease_expires_at, created_at, updated_at, ids)
         values ($1, 'running', 1, $2, $3, $4, $5, $6, $7, $6, $10, 1, $8, {now} + $9, {now}, {now}, $11)
         returning {COLUMNS}"
    ))
    .bind(stored(new.kind))
    .bind(&new.started_by)
    .bind(new.pacing.chunk_size)
    .bind(new.pacing.pause_ms)
    .bind(new.pacing.target_chunk_ms)
    .bind(new.low_id)
    .bind(new.high_id)
    .bind(owner)
    .bind(new.lease_ms)
    .bind(new.rows_expected)
    .bind(new.ids.as_ref().map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())))
    .fetch_one(db.pool())
    .await;
    let run = match inserted {
        Ok(row) => RunRecord::from_row(&row)?,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(busy(db).await),
        Err(e) => return Err(e.into()),
    };
    Ok(Held {
        token: run.fencing_token,
        run,
        owner: owner.to_owned(),
        lease_ms: new.lease_ms,
        policy: Arc::default(),
    })
}

/// Takes over the active run whose lease has expired by the database's clock, or whose holder
/// is a process of this host that is gone (kill -9: no need to wait out its lease): bumps its
/// fencing token first, so the runner that held it can commit nothing more, and holds the token
/// the update returned (one read afterwards could see a third runner's).
pub async fn take_over(db: &Database, run_id: i64, owner: &str, lease_ms: i64) -> Result<Held, EngineError> {
    let now = db.dialect().now_ms_sql();
    // the holder as it is now: only that very holder, seen gone, lets the lease be cut short
    let holder = get(db, run_id).await?.lease_owner.filter(|h| super::runner_is_gone(h));
    if let Some(gone) = &holder {
        tracing::info!(run_id, holder = %gone, "the run's holder is a process of this host that is gone: taking over without waiting for its lease");
    }
    let taken = sqlx::query(&format!(
        "update sti_backfill_runs
         set fencing_token = fencing_token + 1, lease_owner = $1, lease_expires_at = {now} + $2,
             state = case when state = 'queued' then 'running' else state end, updated_at = {now}
         where id = $3 and active_slot = 1
           and (lease_expires_at is null or lease_expires_at < {now} or lease_owner = $4)
         returning {COLUMNS}"
    ))
    .bind(owner)
    .bind(lease_ms)
    .bind(run_id)
    .bind(holder)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = taken else { return Err(busy(db).await) };
    let run = RunRecord::from_row(&row)?;
    Ok(Held { token: run.fencing_token, run, owner: owner.to_owned(), lease_ms, policy: Arc::default() })
}

/// The error for "another run is active", naming it and how long its lease has left by the
/// database's clock.
pub async fn busy(db: &Database) -> EngineError {
    let now = match database_now(db).await {
        Ok(now) => now,
        Err(e) => return e,
    };
    match active(db).await {
        Ok(Some(run)) => EngineError::Busy {
            run_id: run.id,
            state: run.state.to_string(),
            owner: run.lease_owner.unwrap_or_else(|| "nobody".into()),
            seconds_left: (run.lease_expires_at.unwrap_or(0) - now).max(0) / 1000,
        },
        Ok(None) => EngineError::Corrupt("another run was active a moment ago; try again".into()),
        Err(e) => e,
    }
}

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

/// The newest run of `kind`, if any.
pub async fn latest(db: &Database, kind: RunKind) -> Result<Option<RunRecord>, EngineError> {
    let row = sqlx::query(&format!(
        "select {COLUMNS} from sti_backfill_runs where kind = $1 and (ids is null) = $2 order by id desc limit 1"
    ))
    .bind(stored(kind))
    .bind(kind != RunKind::Reconcile)
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

impl Held {
    /// Moves the run to `to` under the lease; final states free the active slot. Clears the
    /// request this runner last read (`self.run.requested`) and no other: one written since
    /// stays, to be acted on next. Fenced by the token and the active slot: a run taken over, or
    /// ended by someone else, is not written.
    pub async fn transition(
        &mut self,
        db: &Database,
        to: RunState,
        error: Option<&str>,
    ) -> Result<(), EngineError> {
        self.run.state.transition(to)?;
        let now = db.dialect().now_ms_sql();
        let updated = sqlx::query(&format!(
            "update sti_backfill_runs
             set state = $1, requested = case when requested = $6 then null else requested end,
                 error = coalesce($2, error), updated_at = {now},
                 active_slot = case when $3 = 1 then null else 1 end,
                 finished_at = case when $3 = 1 then {now} else null end,
                 lease_expires_at = case when $3 = 1 then null else {now} + $7 end
             where id = $4 and fencing_token = $5 and active_slot = 1
             returning {COLUMNS}"
        ))
        .bind(to.as_str())
        .bind(error)
        .bind(i64::from(to.is_final()))
        .bind(self.run.id)
        .bind(self.token)
        .bind(self.run.requested.map(RunRequest::as_str))
        .bind(self.lease_ms)
        .fetch_optional(db.pool())
        .await?;
        let Some(row) = updated else { return Err(EngineError::LeaseLost { run_id: self.run.id }) };
        self.run = RunRecord::from_row(&row)?;
        Ok(())
    }

    /// Renews the lease (while paused, when no chunk does it); fails when it was taken over.
    pub async fn renew(&mut self, db: &Database) -> Result<(), EngineError> {
        let renewed = sqlx::query(&format!(
            "update sti_backfill_runs set lease_expires_at = {} + $1
             where id = $2 and fencing_token = $3 and active_slot = 1",
            db.dialect().now_ms_sql()
        ))
        .bind(self.lease_ms)
        .bind(self.run.id)
        .bind(self.token)
        .execute(db.pool())
        .await?;
        if renewed.rows_affected() == 0 {
            return Err(EngineError::LeaseLost { run_id: self.run.id });
        }
        Ok(())
    }

    /// Re-reads the run (pacing and requests change under it); fails when the lease was lost.
    pub async fn refresh(&mut self, db: &Database) -> Result<(), EngineError> {
        let run = get(db, self.run.id).await?;
        if run.fencing_token != self.token {
            return Err(EngineError::LeaseLost { run_id: self.run.id });
        }
        // the hold is the runner's own: the run row does not carry it
        self.run = RunRecord { hold: self.run.hold.take(), ..run };
        Ok(())
    }
}
