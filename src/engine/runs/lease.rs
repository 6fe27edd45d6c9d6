//! A run under its lease: creating one (the active slot taken in the same statement), taking
//! an expired lease over, and every write a holder makes, fenced by the run's token.

use super::{active, database_now, get, RunRecord, COLUMNS};
use crate::db::Database;
use crate::domain::pacing::Pacing;
use crate::domain::policy::Policy;
use crate::domain::run::{RunKind, RunRequest, RunState};
use crate::engine::EngineError;
use std::sync::Arc;

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
    /// Workers per process (1: no slices; see [`RunRecord::workers`]).
    pub workers: i64,
    /// Deferred validation (see [`RunRecord::defer_fks`]).
    pub defer_fks: bool,
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
    /// Who commits its chunks, as the ledger records it: the owner, or one of its workers.
    pub worker: String,
    /// The slice a worker commits in (`None`: the run's own loop, moving the run's checkpoint).
    pub slice: Option<crate::engine::slices::Claim>,
}

/// Creates a running run holding its lease, unless another run is active. Every time in the
/// row comes from the database's clock, so runners on machines whose clocks disagree still agree
/// on when a lease runs out.
pub async fn create(db: &Database, new: &NewRun, owner: &str) -> Result<Held, EngineError> {
    let now = db.dialect().now_ms_sql();
    let inserted = sqlx::query(&format!(
        "insert into sti_backfill_runs (kind, state, active_slot, started_by, chunk_size, pause_ms,
            target_chunk_ms, low_id, high_id, checkpoint, rows_expected, fencing_token, lease_owner,
            lease_expires_at, lease_ms, created_at, updated_at, ids, workers, defer_fks)
         values ($1, 'running', 1, $2, $3, $4, $5, $6, $7, $6, $10, 1, $8, {now} + $9, $9, {now}, {now}, $11, $12, $13)
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
    .bind(new.workers)
    .bind(i64::from(new.defer_fks))
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
        worker: owner.to_owned(),
        slice: None,
    })
}

/// Takes over the active run whose lease has expired by the database's clock, or whose holder
/// is a process of this host that is gone (kill -9: no need to wait out its lease): bumps its
/// fencing token first, so the runner that held it can commit nothing more, and holds the token
/// the update returned (one read afterwards could see a third runner's).
pub async fn take_over(db: &Database, run_id: i64, owner: &str, lease_ms: i64) -> Result<Held, EngineError> {
    let now = db.dialect().now_ms_sql();
    // the holder as it is now: only that very holder, seen gone, lets the lease be cut short
    let holder = get(db, run_id).await?.lease_owner.filter(|h| crate::engine::runner_is_gone(h));
    if let Some(gone) = &holder {
        tracing::info!(run_id, holder = %gone, "the run's holder is a process of this host that is gone: taking over without waiting for its lease");
    }
    let taken = sqlx::query(&format!(
        "update sti_backfill_runs
         set fencing_token = fencing_token + 1, lease_owner = $1, lease_expires_at = {now} + $2, lease_ms = $2,
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
    Ok(Held {
        token: run.fencing_token,
        run,
        owner: owner.to_owned(),
        lease_ms,
        policy: Arc::default(),
        worker: owner.to_owned(),
        slice: None,
    })
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
        self.run.lease_expires_at = Some(self.renewal().renew(db).await?);
        Ok(())
    }

    /// What renewing the lease needs, apart from the held run (which a long step may change).
    pub fn renewal(&self) -> Renewal {
        Renewal { run_id: self.run.id, token: self.token, lease_ms: self.lease_ms }
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

/// The lease of a held run, renewed while a long step runs ([`Held::renewal`]).
#[derive(Clone, Copy, Debug)]
pub struct Renewal {
    run_id: i64,
    token: i64,
    lease_ms: i64,
}

impl Renewal {
    /// Renews the lease once: its new end; fails when it was taken over or the run ended.
    pub async fn renew(self, db: &Database) -> Result<i64, EngineError> {
        let renewed: Option<i64> = sqlx::query_scalar(&format!(
            "update sti_backfill_runs set lease_expires_at = {} + $1
             where id = $2 and fencing_token = $3 and active_slot = 1
             returning lease_expires_at",
            db.dialect().now_ms_sql()
        ))
        .bind(self.lease_ms)
        .bind(self.run_id)
        .bind(self.token)
        .fetch_optional(db.pool())
        .await?;
        renewed.ok_or(EngineError::LeaseLost { run_id: self.run_id })
    }

    /// Runs `work` — a long step of the holder's, such as the completion check or a validation —
    /// while the lease is renewed every third of its length, so that nobody takes a live run for
    /// a dead one; `beat` is told each new end of the lease (the mirror shows the runner alive).
    /// Once the lease is lost it is no longer renewed; the step's caller learns so at its next
    /// fenced write.
    pub async fn during<T>(
        self,
        db: &Database,
        work: impl std::future::Future<Output = T>,
        beat: &(dyn Fn(i64) + Sync),
    ) -> T {
        let every = std::time::Duration::from_millis((self.lease_ms / 3).max(50) as u64);
        let mut lost = false;
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(every), if !lost => match self.renew(db).await {
                    Ok(expires) => beat(expires),
                    Err(EngineError::LeaseLost { .. }) => lost = true,
                    Err(error) => {
                        tracing::warn!(run_id = self.run_id, %error, "cannot renew the lease during a long step; trying again")
                    }
                },
            }
        }
    }
}
