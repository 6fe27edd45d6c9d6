//! How a run begins: a new run over a frozen key range, or the active one taken over.

use crate::db::{target, Database};
use crate::domain::environment::Environment;
use crate::domain::pacing::Pacing;
use crate::domain::run::RunKind;
use crate::engine::runs::{self, Held, NewRun};
use crate::engine::EngineError;

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
    /// How the run meets faults and stress (the environment's configured policy).
    pub policy: std::sync::Arc<crate::domain::policy::Policy>,
    /// Workers per process (1: one loop; more: the range in slices, PostgreSQL only).
    pub workers: i64,
    /// Deferred validation of the subtype tables' foreign keys (a backfill on PostgreSQL).
    pub defer_fks: bool,
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
    crate::engine::workers::check(db.dialect(), kind, start.workers)?;
    if start.defer_fks {
        crate::engine::deferred::check(db.dialect(), kind)?;
    }
    if let Some(active) = runs::active(db).await? {
        if active.kind == kind && start.resume_from.is_none() {
            return Ok(Beginning::TakeOver { run_id: active.id });
        }
    }
    // a table whose only key is the least id still has a range to walk
    let high = crate::domain::span::end(high);
    let (low, high) = match start.resume_from {
        Some(from) if from < 0 => return Err(EngineError::NegativeResume(from)),
        Some(from) if from > high => return Err(EngineError::ResumeBeyondEnd { given: from, last: high }),
        Some(from) => (from, high),
        // what a failed run committed stays committed: go on after it, over its range and
        // whatever was added since
        // — unless a run of another kind went over the range since: a rollback after a failed
        // backfill deleted what it had copied, a backfill after a failed rollback wrote back
        // what it had deleted, and the failed run's checkpoint says nothing any more
        None => match runs::latest_over_range(db).await? {
            Some(failed)
                if crate::domain::run::continues_after(
                    kind,
                    Some((failed.kind, failed.state, failed.checkpoint)),
                )
                .is_some() =>
            {
                tracing::info!(environment = %start.env, failed_run = failed.id, checkpoint = failed.checkpoint,
                    "continuing after the failed run's checkpoint");
                (failed.checkpoint, high.max(failed.high_id))
            }
            _ => (crate::engine::keys::start_before(db, crate::engine::keys::walked_by(kind)).await?, high),
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
        ids: None,
        workers: start.workers,
        defer_fks: start.defer_fks,
    }))
}

/// Does what [`plan_begin`] decided: a take-over fails when the run is no longer active or its
/// lease is live, a new run when another became active.
pub async fn carry_out(db: &Database, beginning: &Beginning, start: &Start) -> Result<Held, EngineError> {
    let owner = crate::engine::runner_name();
    match beginning {
        Beginning::TakeOver { run_id } => {
            tracing::info!(environment = %start.env, run_id, "taking over the active run");
            runs::take_over(db, *run_id, &owner, start.lease_ms).await
        }
        Beginning::New(new) => runs::create(db, new, &owner).await,
    }
    .map(|held| Held { policy: start.policy.clone(), ..held })
}

/// [`plan_begin`] and [`carry_out`] in one.
pub async fn begin_run(db: &Database, kind: RunKind, start: &Start, high: i64) -> Result<Held, EngineError> {
    carry_out(db, &plan_begin(db, kind, start, high).await?, start).await
}
