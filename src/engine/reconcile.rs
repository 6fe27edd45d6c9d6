//! Reconcile: re-copies exactly the ids the newest verification found different — a run over
//! that list instead of a key range, chunked, fenced and resumable like any run, each id
//! re-identified as the change capture does it. What it writes carries its run's id, so a
//! rollback deletes it with the backfills' rows.

use super::backfill::{self, record_chunk, ChunkOutcome, Start, StepFuture};
use super::runs::{self, Held, NewRun};
use super::{capture, EngineError};
use crate::db::live::last_verification;
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::run::RunKind;
use crate::domain::span::{self, Span};
use serde::Serialize;
use std::time::Instant;

/// What a reconcile would re-copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReconcilePlan {
    pub environment: Environment,
    /// The verification the ids come from.
    pub verification_id: i64,
    pub verified_at: i64,
    pub ids: Vec<i64>,
    /// The verification found more ids than it keeps: verify again after this reconcile.
    pub truncated: bool,
}

/// The ids of the newest verification; an error when there is none, it found nothing, or a run
/// ended after it (its ids say nothing about the tables since).
pub async fn plan(
    control: &Database,
    target: &Database,
    env: Environment,
) -> Result<ReconcilePlan, EngineError> {
    let verification = last_verification(control, env).await?.ok_or_else(|| {
        EngineError::NothingToReconcile(format!("{env} has no verification yet: verify it first"))
    })?;
    if verification.ok || verification.mismatched_ids.is_empty() {
        return Err(EngineError::NothingToReconcile(format!(
            "{env}'s newest verification (#{}) found no difference",
            verification.id
        )));
    }
    let newer: Option<(i64, String)> = sqlx::query_as(
        "select id, kind from sti_backfill_runs where finished_at > $1 and ids is null order by id desc limit 1",
    )
    .bind(verification.created_at)
    .fetch_optional(target.pool())
    .await?;
    if let Some((run, kind)) = newer {
        return Err(EngineError::NothingToReconcile(format!(
            "{env}'s newest verification (#{}) is older than {kind} run #{run}: verify again first",
            verification.id
        )));
    }
    let mut ids = verification.mismatched_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    Ok(ReconcilePlan {
        environment: env,
        verification_id: verification.id,
        verified_at: verification.created_at,
        truncated: ids.len() >= super::verify::MAX_REPORTED_IDS,
        ids,
    })
}

/// Starts a reconcile over `plan`'s ids, or takes over the active reconcile whose runner died
/// (`plan` may then be `None`).
pub async fn begin(db: &Database, plan: Option<&ReconcilePlan>, start: &Start) -> Result<Held, EngineError> {
    if let Some(active) = runs::active(db).await? {
        if active.kind == RunKind::Reconcile && start.resume_from.is_none() {
            return backfill::carry_out(db, &backfill::Beginning::TakeOver { run_id: active.id }, start)
                .await;
        }
    }
    let Some(plan) = plan else { return Err(EngineError::NoActiveRun) };
    let (first, last) = match (plan.ids.first(), plan.ids.last()) {
        (Some(first), Some(last)) => (*first, *last),
        _ => return Err(EngineError::NothingToReconcile("no ids to reconcile".into())),
    };
    let new = NewRun {
        kind: RunKind::Reconcile,
        started_by: start.started_by.clone(),
        pacing: start.pacing,
        low_id: span::before(first),
        high_id: span::end(last),
        rows_expected: Some(plan.ids.len() as i64),
        lease_ms: start.lease_ms,
        ids: Some(plan.ids.clone()),
        workers: 1,
        defer_fks: false,
    };
    backfill::carry_out(db, &backfill::Beginning::New(new), start).await
}

pub(super) fn step<'a>(db: &'a Database, held: &'a Held, from: i64, to: i64) -> StepFuture<'a> {
    Box::pin(reconcile_chunk(db, held, from, to))
}

/// The end of the chunk of `size` ids after `from`: the size-th listed id after it (never the
/// least id, see [`span::end`]).
pub fn chunk_end(ids: &[i64], from: i64, size: i64) -> i64 {
    let after = Span::after(from, i64::MAX);
    let start = ids.partition_point(|id| *id < after.first);
    let end = (start + size.max(1) as usize).min(ids.len());
    if end == 0 {
        return from;
    }
    span::end(ids[end - 1].max(from))
}

/// Re-identifies the listed ids in `(from, to]`, with ledger and checkpoint, in one fenced
/// transaction. Its counts: ids read, rows written per subtype, ids that are dead letters.
pub async fn reconcile_chunk(
    db: &Database,
    held: &Held,
    from: i64,
    to: i64,
) -> Result<ChunkOutcome, EngineError> {
    let started = Instant::now();
    let ids: Vec<i64> = held
        .run
        .ids
        .as_deref()
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|id| Span::after(from, to).contains(*id))
        .collect();
    let mut tx = db.begin_write().await?;
    backfill::name_session(&mut tx, db.dialect(), held.run.id).await?;
    capture::reidentify_ids(&mut tx, db.dialect(), &ids, held.run.id).await?;
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let mut counts = [0_i64; 3];
    if !ids.is_empty() {
        for (i, sql) in [
            format!("select count(*) from school_projects where project_id in ({list}) and backfill_run_id = $1"),
            format!("select count(*) from self_study_projects where project_id in ({list}) and backfill_run_id = $1"),
            format!("select count(distinct project_id) from sti_backfill_dead_letters where project_id in ({list}) and run_id = $1"),
        ]
        .iter()
        .enumerate()
        {
            counts[i] = sqlx::query_scalar(sql).bind(held.run.id).fetch_one(&mut *tx).await?;
        }
    }
    let mut chunk = ChunkOutcome {
        chunk_no: held.run.chunks + 1,
        from_id: from,
        to_id: to,
        rows_read: ids.len() as i64,
        school_created: counts[0],
        self_study_created: counts[1],
        school_skipped: 0,
        self_study_skipped: (ids.len() as i64 - counts[0] - counts[1] - counts[2]).max(0),
        errors: counts[2],
        duration_ms: backfill::elapsed_ms(started),
    };
    record_chunk(&mut tx, db.dialect(), held, &mut chunk).await?;
    tx.commit().await?;
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::chunk_end;
    use crate::domain::span;

    #[test]
    fn a_chunk_ends_at_the_size_th_listed_id_after_the_checkpoint() {
        let ids = [3, 9, 10, 400, 401];
        assert_eq!(chunk_end(&ids, 2, 2), 9);
        assert_eq!(chunk_end(&ids, 9, 2), 400);
        assert_eq!(chunk_end(&ids, 400, 10), 401);
        assert_eq!(chunk_end(&ids, 401, 10), 401, "nothing after the last");
        assert_eq!(chunk_end(&[], 5, 10), 5);
    }

    #[test]
    fn the_least_id_is_listed_too() {
        let ids = [i64::MIN, i64::MIN + 1, 5];
        assert_eq!(chunk_end(&ids, span::BEFORE_ALL, 1), i64::MIN + 1, "a chunk never ends at the least id");
        assert_eq!(chunk_end(&ids, i64::MIN + 1, 1), 5);
    }
}
