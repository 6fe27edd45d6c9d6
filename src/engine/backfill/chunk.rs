//! One idempotent chunk: copy the legacy rows of `(from, to]` into the subtype tables, record
//! the refused ones, and move the checkpoint, in one transaction fenced by the run's token.

use crate::db::classify::{classified, insert_dead_letters_from, Subtype};
use crate::db::{Database, Dialect};
use crate::domain::span::Span;
use crate::engine::runs::Held;
use crate::engine::{now_ms, EngineError};
use serde::Serialize;
use sqlx::Row;
use std::time::Instant;

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
    name_session(&mut tx, db.dialect(), held.run.id).await?;
    let counts = match db.dialect() {
        Dialect::Postgres => copy_chunk_postgres(&mut tx, held.run.id, Span::after(from, to)).await?,
        Dialect::Sqlite => copy_chunk_sqlite(&mut tx, held.run.id, Span::after(from, to)).await?,
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
    record_chunk(&mut tx, db.dialect(), held, &mut outcome).await?;
    tx.commit().await?;
    // the ledger row holds the time up to its own write; the caller sizes the next chunk by
    // the time through the commit, where a slow disk or a replica wait shows
    outcome.duration_ms = elapsed_ms(started);
    Ok(outcome)
}

/// PostgreSQL: for the chunk's transaction the session is named after the run
/// (`sti-rollout/<env>/run-<id>`), so a DBA who sees it in `pg_stat_activity` or a lock graph
/// knows whose it is; the name reverts at commit.
pub(in crate::engine) async fn name_session(
    tx: &mut Tx<'_>,
    dialect: Dialect,
    run_id: i64,
) -> Result<(), EngineError> {
    if dialect == Dialect::Postgres {
        sqlx::query(
            "select cast(set_config('application_name', split_part(current_setting('application_name'), '/run-', 1) || '/run-' || $1, true) as text)",
        )
        .bind(run_id.to_string())
        .fetch_one(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(in crate::engine) fn elapsed_ms(since: Instant) -> i64 {
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
async fn copy_chunk_postgres(tx: &mut Tx<'_>, run_id: i64, span: Span) -> Result<ChunkCounts, EngineError> {
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
                (select count(*) from school_projects where project_id >= $1 and project_id <= $2) as school_present,
                (select count(*) from self_study_projects where project_id >= $1 and project_id <= $2) as self_study_present,
                (select count(*) from s) as school_created,
                (select count(*) from t) as self_study_created,
                (select count(*) from d) as errors"
    ))
    .bind(span.first)
    .bind(span.last)
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
async fn copy_chunk_sqlite(tx: &mut Tx<'_>, run_id: i64, span: Span) -> Result<ChunkCounts, EngineError> {
    let rows = classified();
    let counts = sqlx::query(
        "select (select count(*) from projects where id >= $1 and id <= $2) as rows_read,
                (select count(*) from school_projects where project_id >= $1 and project_id <= $2) as school,
                (select count(*) from self_study_projects where project_id >= $1 and project_id <= $2) as self_study",
    )
    .bind(span.first)
    .bind(span.last)
    .fetch_one(&mut **tx)
    .await?;
    let (rows_read, school_present, self_study_present): (i64, i64, i64) =
        (counts.try_get("rows_read")?, counts.try_get("school")?, counts.try_get("self_study")?);

    let mut created = [0_i64; 2];
    for (i, subtype) in Subtype::ALL.into_iter().enumerate() {
        created[i] = sqlx::query(&subtype.insert_from(&rows, "$3", true))
            .bind(span.first)
            .bind(span.last)
            .bind(run_id)
            .execute(&mut **tx)
            .await?
            .rows_affected() as i64;
    }
    let [school_created, self_study_created] = created;

    // always, as on PostgreSQL: a row can be rejected and still be counted present (its
    // subtype row predates a change that made it dirty), so the counts cannot tell
    let errors = sqlx::query(&insert_dead_letters_from(&rows, "$3", "$4"))
        .bind(span.first)
        .bind(span.last)
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
/// in the active slot), and the whole chunk is rolled back. A worker's chunk moves its slice's
/// checkpoint instead (fenced by the slice's claim, `slices::advance`) and leaves the run's
/// checkpoint and lease to the run's holder. The chunk's number is the run's count of chunks
/// as this update leaves it, so workers committing side by side never share one. Times are the
/// database's.
pub(in crate::engine) async fn record_chunk(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    held: &Held,
    chunk: &mut ChunkOutcome,
) -> Result<(), EngineError> {
    let now = dialect.now_ms_sql();
    if let Some(claim) = &held.slice {
        crate::engine::slices::advance(tx, dialect, claim, chunk.from_id, chunk.to_id, held.lease_ms).await?;
    }
    let in_slice = i64::from(held.slice.is_some());
    let chunk_no: Option<i64> = sqlx::query_scalar(&format!(
        "update sti_backfill_runs
         set checkpoint = case when $12 = 1 then checkpoint else $1 end, chunks = chunks + 1,
             rows_read = rows_read + $2,
             school_created = school_created + $3, self_study_created = self_study_created + $4,
             school_skipped = school_skipped + $5, self_study_skipped = self_study_skipped + $6,
             errors = errors + $7, updated_at = {now},
             lease_expires_at = case when $12 = 1 then lease_expires_at else {now} + $8 end
         where id = $9 and fencing_token = $10 and ($12 = 1 or checkpoint = $11)
           and active_slot = 1 and state = 'running'
         returning chunks"
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
    .bind(in_slice)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(chunk_no) = chunk_no else { return Err(EngineError::LeaseLost { run_id: held.run.id }) };
    chunk.chunk_no = chunk_no;
    sqlx::query(&format!(
        "insert into sti_backfill_chunks (run_id, chunk_no, from_id, to_id, rows_read, school_created,
            self_study_created, school_skipped, self_study_skipped, errors, duration_ms, committed_at,
            worker, slice_no)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, {now}, $12, $13)"
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
    .bind(&held.worker)
    .bind(held.slice.map(|claim| claim.slice_no))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
