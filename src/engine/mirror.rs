//! Mirroring runs into the control database. Best effort: the target database holds the truth,
//! so a control database that hiccups costs a stale console view, never a run.

use super::backfill::ChunkOutcome;
use super::runs::RunRecord;
use crate::db::Database;
use crate::domain::environment::Environment;

/// Upserts the run's current state.
pub async fn record(control: Option<&Database>, env: Environment, run: &RunRecord) {
    let Some(control) = control else { return };
    let result = sqlx::query(
        "insert into runs (environment, run_id, kind, state, started_by, chunk_size, low_id, high_id,
            checkpoint, chunks, rows_read, school_created, self_study_created, school_skipped,
            self_study_skipped, errors, error, created_at, updated_at, finished_at, requested, pause_ms,
            lease_owner, lease_expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
            $21, $22, $23, $24)
         on conflict (environment, run_id) do update set
            state = excluded.state, chunk_size = excluded.chunk_size, checkpoint = excluded.checkpoint,
            chunks = excluded.chunks, rows_read = excluded.rows_read,
            school_created = excluded.school_created, self_study_created = excluded.self_study_created,
            school_skipped = excluded.school_skipped, self_study_skipped = excluded.self_study_skipped,
            errors = excluded.errors, error = excluded.error, updated_at = excluded.updated_at,
            finished_at = excluded.finished_at, requested = excluded.requested,
            pause_ms = excluded.pause_ms, lease_owner = excluded.lease_owner,
            lease_expires_at = excluded.lease_expires_at",
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
    .execute(control.pool())
    .await;
    if let Err(error) = result {
        tracing::warn!(environment = %env, run_id = run.id, %error, "cannot mirror the run into the control database");
    }
}

/// Appends a committed chunk to the mirrored ledger.
pub async fn record_chunk(
    control: Option<&Database>,
    env: Environment,
    run: &RunRecord,
    chunk: &ChunkOutcome,
) {
    let Some(control) = control else { return };
    let result = sqlx::query(
        "insert into run_chunks (environment, run_id, chunk_no, from_id, to_id, rows_read, created,
            skipped, errors, duration_ms, school_created, self_study_created, committed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         on conflict (environment, run_id, chunk_no) do nothing",
    )
    .bind(env.as_str())
    .bind(run.id)
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
    .bind(crate::db::now_ms())
    .execute(control.pool())
    .await;
    if let Err(error) = result {
        tracing::warn!(environment = %env, run_id = run.id, %error, "cannot mirror the chunk into the control database");
    }
}
