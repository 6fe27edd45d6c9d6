//! Rollback (data): deletes exactly the subtype rows that backfill runs created in this
//! environment — rows the application wrote (no `backfill_run_id`) stay — in keyset chunks over
//! `project_id`, as a resumable run with its own ledger. Refused while `ENABLE_STI` is on.
//!
//! In a rollback run's ledger and counters, `school_created` / `self_study_created` count the
//! rows *deleted*.

use super::backfill::{self, begin_run, ChunkOutcome, Start, StepFuture};
use super::runs::Held;
use super::EngineError;
use crate::db::control::{self, ENABLE_STI};
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::run::RunKind;
use crate::domain::span::Span;
use std::time::Instant;

/// Rows created by backfill runs: what a rollback would delete.
/// That is rows a backfill run (or a reconcile) wrote, and rows the change capture wrote (its
/// provenance is `0`, [`super::capture::CAPTURE_PROVENANCE`]); rows the application wrote with
/// its flag on (`null`) stay.
pub(super) const PROVENANCE: &str =
    "(backfill_run_id = 0 or backfill_run_id in (select id from sti_backfill_runs where kind = 'backfill'))";

pub use crate::domain::reports::RollbackPlan;

/// Refuses while the environment's flag is on: the application would be reading these rows.
pub async fn ensure_flag_off(control: &Database, env: Environment) -> Result<(), EngineError> {
    let flag = control::flag(control, env, ENABLE_STI).await?;
    if flag.is_some_and(|f| f.enabled) {
        return Err(EngineError::FlagOn { env: env.to_string() });
    }
    Ok(())
}

/// The dry-run: counts what a rollback would delete and keep, writing nothing.
pub async fn plan(db: &Database, env: Environment) -> Result<RollbackPlan, EngineError> {
    let count = |sql: String| async move { sqlx::query_scalar::<_, i64>(&sql).fetch_one(db.pool()).await };
    Ok(RollbackPlan {
        environment: env,
        school: count(format!("select count(*) from school_projects where {PROVENANCE}")).await?,
        self_study: count(format!("select count(*) from self_study_projects where {PROVENANCE}")).await?,
        kept: count(format!(
            "select (select count(*) from school_projects where not ({PROVENANCE}) or backfill_run_id is null)
                  + (select count(*) from self_study_projects where not ({PROVENANCE}) or backfill_run_id is null)"
        ))
        .await?,
    })
}

/// Starts a rollback run (or takes over one whose runner died) after checking the flag.
pub async fn begin(db: &Database, control: &Database, start: &Start) -> Result<Held, EngineError> {
    ensure_flag_off(control, start.env).await?;
    let high: i64 = sqlx::query_scalar(
        "select cast(coalesce(max(m), 0) as bigint) from (
            select max(project_id) as m from school_projects
            union all select max(project_id) from self_study_projects) maxima",
    )
    .fetch_one(db.pool())
    .await?;
    begin_run(db, RunKind::Rollback, start, high).await
}

pub(super) fn step<'a>(db: &'a Database, held: &'a Held, from: i64, to: i64) -> StepFuture<'a> {
    Box::pin(rollback_chunk(db, held, from, to))
}

/// Deletes the backfilled rows with `project_id` in `(from, to]`, with ledger and checkpoint,
/// in one fenced transaction.
pub async fn rollback_chunk(
    db: &Database,
    held: &Held,
    from: i64,
    to: i64,
) -> Result<ChunkOutcome, EngineError> {
    let started = Instant::now();
    let mut tx = db.begin_write().await?;
    backfill::name_session(&mut tx, db.dialect(), held.run.id).await?;
    let mut deleted = [0_i64; 2];
    let span = Span::after(from, to);
    for (i, table) in ["school_projects", "self_study_projects"].into_iter().enumerate() {
        deleted[i] = sqlx::query(&format!(
            "delete from {table} where project_id >= $1 and project_id <= $2 and {PROVENANCE}"
        ))
        .bind(span.first)
        .bind(span.last)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
    }
    let mut chunk = ChunkOutcome {
        chunk_no: held.run.chunks + 1,
        from_id: from,
        to_id: to,
        rows_read: deleted[0] + deleted[1],
        school_created: deleted[0],
        self_study_created: deleted[1],
        duration_ms: backfill::elapsed_ms(started),
        ..ChunkOutcome::default()
    };
    backfill::record_chunk(&mut tx, db.dialect(), held, &mut chunk).await?;
    tx.commit().await?;
    chunk.duration_ms = backfill::elapsed_ms(started); // through the commit, as a backfill chunk
    Ok(chunk)
}
