//! A run's key range cut into slices, in the target database, for parallel workers (PRODUCT
//! §7): a worker on any machine claims an open slice with `for update skip locked`, and every
//! chunk it commits there is fenced by the slice's claim token (and the run's token and state,
//! `backfill::record_chunk`), so a worker whose claim ran out and was taken commits nothing.
//! The run's lease holder keeps the run's checkpoint at the slices' low-water mark — every key
//! at or below it is done — so a run that fails resumes after it, as a run without slices does.

use super::runs::RunRecord;
use super::EngineError;
use crate::db::{Database, Dialect};
use crate::domain::pacing::slice_count;
use sqlx::Row;

/// A slice a worker holds: it may commit chunks in `(checkpoint, high_id]` while `token` is the
/// slice's claim token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub run_id: i64,
    pub slice_no: i64,
    pub high_id: i64,
    pub checkpoint: i64,
    pub token: i64,
}

/// How a run's slices stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub open: i64,
    pub done: i64,
    /// The first error a worker gave up on (its slice and the reason).
    pub failed: Option<String>,
}

/// Cuts the run's remaining range `(checkpoint, high]` into slices of about equal rows, unless
/// it has slices already (a runner that takes the run over keeps them); the number of slices.
/// The cuts are keys the range holds, found by walking the index once (`keys::chunk_end`), so
/// slices follow rows, not the span of the keys.
pub async fn cut(db: &Database, run: &RunRecord) -> Result<i64, EngineError> {
    let existing: i64 = sqlx::query_scalar("select count(*) from sti_backfill_slices where run_id = $1")
        .bind(run.id)
        .fetch_one(db.pool())
        .await?;
    if existing > 0 {
        return Ok(existing);
    }
    let walked = super::keys::walked_by(run.kind);
    let rows = match run.rows_expected {
        Some(rows) => rows,
        None => {
            let rows = super::keys::rows_between(db, run.kind, run.checkpoint, run.high_id).await?;
            // the run's progress and ETA count the same rows (nothing is done yet)
            if run.checkpoint == run.low_id {
                super::runs::set_rows_expected(db, run.id, rows).await?;
            }
            rows
        }
    };
    let count = slice_count(run.workers, rows, run.pacing.chunk_size);
    let step = (rows / count).max(1);
    let mut bounds = Vec::with_capacity(count as usize);
    let mut low = run.checkpoint;
    for n in 0..count {
        let high = if n + 1 == count {
            run.high_id
        } else {
            super::keys::chunk_end(db, walked, low, step, run.high_id).await?
        };
        if high <= low {
            break;
        }
        bounds.push((low, high));
        low = high;
    }
    if bounds.is_empty() {
        bounds.push((run.checkpoint, run.high_id.max(run.checkpoint)));
    }
    let mut tx = db.begin_write().await?;
    for (n, (low, high)) in bounds.iter().enumerate() {
        sqlx::query(
            "insert into sti_backfill_slices (run_id, slice_no, low_id, high_id, checkpoint, done)
             values ($1, $2, $3, $4, $3, $5) on conflict (run_id, slice_no) do nothing",
        )
        .bind(run.id)
        .bind(n as i64 + 1)
        .bind(low)
        .bind(high)
        .bind(i64::from(high <= low))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(run_id = run.id, slices = bounds.len(), rows, "the run's range is cut into slices");
    Ok(bounds.len() as i64)
}

/// Claims the first open slice nobody holds (or whose claim ran out by the database's clock),
/// skipping the ones another worker is claiming this instant; `None` when there is none.
pub async fn claim(
    db: &Database,
    run_id: i64,
    worker: &str,
    lease_ms: i64,
) -> Result<Option<Claim>, EngineError> {
    let now = db.dialect().now_ms_sql();
    let lock = match db.dialect() {
        Dialect::Postgres => "for update skip locked",
        // one writer: the write transaction is the lock
        Dialect::Sqlite => "",
    };
    let row = sqlx::query(&format!(
        "update sti_backfill_slices
         set claim_token = claim_token + 1, claimed_by = $2, claim_expires_at = {now} + $3
         where run_id = $1 and slice_no = (
             select slice_no from sti_backfill_slices
             where run_id = $1 and done = 0 and error is null
               and (claim_expires_at is null or claim_expires_at < {now})
             order by slice_no limit 1 {lock})
         returning slice_no, high_id, checkpoint, claim_token"
    ))
    .bind(run_id)
    .bind(worker)
    .bind(lease_ms)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(Claim {
            run_id,
            slice_no: row.try_get("slice_no")?,
            high_id: row.try_get("high_id")?,
            checkpoint: row.try_get("checkpoint")?,
            token: row.try_get("claim_token")?,
        })
    })
    .transpose()
}

/// Gives the slice back (a pause, a worker that stops): another worker may claim it at once.
pub async fn release(db: &Database, claim: &Claim) -> Result<(), EngineError> {
    sqlx::query(
        "update sti_backfill_slices set claimed_by = null, claim_expires_at = null
         where run_id = $1 and slice_no = $2 and claim_token = $3",
    )
    .bind(claim.run_id)
    .bind(claim.slice_no)
    .bind(claim.token)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records the error a worker gave up on in its slice, which no worker claims again: the run's
/// lease holder fails the run with it.
pub async fn give_up(db: &Database, claim: &Claim, error: &str) -> Result<(), EngineError> {
    sqlx::query(
        "update sti_backfill_slices set error = $4, claimed_by = null, claim_expires_at = null
         where run_id = $1 and slice_no = $2 and claim_token = $3",
    )
    .bind(claim.run_id)
    .bind(claim.slice_no)
    .bind(claim.token)
    .bind(error)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Moves the claimed slice's checkpoint to `to` (done when it reaches the slice's end) in the
/// chunk's transaction; renews the claim. Zero rows updated means the claim was taken by
/// another worker (or the slice moved under it), and the chunk must roll back.
pub(super) async fn advance(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    claim: &Claim,
    from: i64,
    to: i64,
    lease_ms: i64,
) -> Result<(), EngineError> {
    let moved = sqlx::query(&format!(
        "update sti_backfill_slices
         set checkpoint = $4, done = case when $4 >= high_id then 1 else 0 end,
             claim_expires_at = {} + $6
         where run_id = $1 and slice_no = $2 and claim_token = $3 and checkpoint = $5 and done = 0",
        dialect.now_ms_sql()
    ))
    .bind(claim.run_id)
    .bind(claim.slice_no)
    .bind(claim.token)
    .bind(to)
    .bind(from)
    .bind(lease_ms)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(EngineError::ClaimLost { run_id: claim.run_id, slice_no: claim.slice_no });
    }
    Ok(())
}

/// How the run's slices stand.
pub async fn standing(db: &Database, run_id: i64) -> Result<Standing, EngineError> {
    let row = sqlx::query(
        "select coalesce(sum(case when done = 0 then 1 else 0 end), 0) as open,
                coalesce(sum(done), 0) as done,
                min(case when error is not null then 'slice ' || cast(slice_no as text) || ': ' || error end) as failed
         from sti_backfill_slices where run_id = $1",
    )
    .bind(run_id)
    .fetch_one(db.pool())
    .await?;
    Ok(Standing { open: row.try_get("open")?, done: row.try_get("done")?, failed: row.try_get("failed")? })
}

/// Moves the run's checkpoint up to the slices' low-water mark (the end of the range once all
/// are done), fenced by the holder's token; the checkpoint never goes back.
pub async fn settle_checkpoint(db: &Database, run_id: i64, token: i64) -> Result<(), EngineError> {
    sqlx::query(&format!(
        "update sti_backfill_runs
         set checkpoint = coalesce((select min(s.checkpoint) from sti_backfill_slices s
                                    where s.run_id = sti_backfill_runs.id and s.done = 0), high_id),
             updated_at = {}
         where id = $1 and fencing_token = $2 and active_slot = 1
           and checkpoint < coalesce((select min(s.checkpoint) from sti_backfill_slices s
                                      where s.run_id = sti_backfill_runs.id and s.done = 0), high_id)",
        db.dialect().now_ms_sql()
    ))
    .bind(run_id)
    .bind(token)
    .execute(db.pool())
    .await?;
    Ok(())
}
