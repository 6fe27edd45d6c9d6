//! What "completed" promises, checked before a run says so: a completed backfill leaves no clean
//! legacy row of its range without a subtype row (a row the target refused is a dead letter, not
//! a gap), a completed rollback no row a backfill or the capture wrote in its range. A run that
//! walked its range but finds it short — a checkpoint that another run's work made meaningless,
//! a hand-edited run row — fails instead, its checkpoint put back before the first row it
//! missed, so the next run of its kind goes over that part again.

use super::runs::Held;
use super::EngineError;
use crate::db::classify::{classified, Subtype};
use crate::db::Database;
use crate::domain::run::RunKind;
use crate::domain::span::{self, Span};
use sqlx::Row;

/// Rows per statement of the check.
const PIECE: i64 = 50_000;

/// Checks the promise of `held`'s kind over its range `(low, high]`; a reconcile (its ids, not a
/// range) promises nothing here: verification judges it.
pub async fn check(db: &Database, held: &mut Held) -> Result<(), EngineError> {
    let run = &held.run;
    let (sql, what) = match (run.kind, &run.ids) {
        (RunKind::Backfill, None) => (
            format!(
                "select count(*) as n, min(c.id) as first from {classified} c
                 where c.verdict not like 'x:%'
                   {missing}
                   and not exists (select 1 from sti_backfill_dead_letters d where d.project_id = c.id)",
                classified = classified(),
                missing = Subtype::ALL
                    .map(|s| format!(
                        "and not exists (select 1 from {} t where t.project_id = c.id)",
                        s.table()
                    ))
                    .join("\n                   "),
            ),
            "clean legacy rows of its range have no subtype row",
        ),
        (RunKind::Rollback, _) => (
            format!(
                "select cast(coalesce(sum(n), 0) as bigint) as n, min(first) as first from (
                    select count(*) as n, min(project_id) as first from school_projects
                    where project_id >= $1 and project_id <= $2 and {p}
                    union all
                    select count(*), min(project_id) from self_study_projects
                    where project_id >= $1 and project_id <= $2 and {p}) left_behind",
                p = super::rollback::PROVENANCE
            ),
            "rows a backfill wrote are still in its range",
        ),
        _ => return Ok(()),
    };
    // in pieces of the range, each a statement well within the session's statement timeout,
    // cut at existing keys as the run's chunks are
    let walked = super::keys::walked_by(run.kind);
    let (mut from, mut missing, mut first) = (run.low_id, 0_i64, None);
    while from < run.high_id {
        let to = super::keys::chunk_end(db, walked, from, PIECE, run.high_id).await?;
        let span = Span::after(from, to);
        let row = sqlx::query(&sql).bind(span.first).bind(span.last).fetch_one(db.pool()).await?;
        let n: i64 = row.try_get("n")?;
        if n > 0 {
            missing += n;
            first = first.or(row.try_get::<Option<i64>, _>("first")?);
        }
        from = to;
    }
    let Some(first) = first.filter(|_| missing > 0) else { return Ok(()) };
    // the next run of this kind continues after the failed run's checkpoint: just before the
    // first row this one missed (fenced like every write of the run)
    let back = span::before(first).max(run.low_id);
    sqlx::query("update sti_backfill_runs set checkpoint = $1 where id = $2 and fencing_token = $3")
        .bind(back)
        .bind(run.id)
        .bind(held.token)
        .execute(db.pool())
        .await?;
    held.run.checkpoint = back;
    tracing::error!(
        run_id = held.run.id,
        missing,
        first,
        "the run reached the end of its range but is not complete"
    );
    Err(EngineError::Unfinished {
        run_id: held.run.id,
        kind: held.run.kind.as_str(),
        problem: format!("{missing} {what} (the first: id {first})"),
    })
}
