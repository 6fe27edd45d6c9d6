//! The backfill run: one idempotent chunk step, and the loop around it that follows the run's
//! pacing and the operator's requests.

use super::runs::{self, Held, NewRun};
use super::{mirror, now_ms, EngineError};
use crate::db::classify::{classified, insert_dead_letters_from, Subtype};
use crate::db::{target, Database, Dialect};
use crate::domain::environment::Environment;
use crate::domain::pacing::Pacing;
use crate::domain::run::{Hold, HoldKind, RunKind, RunRequest, RunState};
use serde::Serialize;
use sqlx::Row;
use std::time::{Duration, Instant};
use tracing::Instrument;

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
        Dialect::Postgres => copy_chunk_postgres(&mut tx, held.run.id, from, to).await?,
        Dialect::Sqlite => copy_chunk_sqlite(&mut tx, held.run.id, from, to).await?,
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
    record_chunk(&mut tx, db.dialect(), held, &outcome).await?;
    tx.commit().await?;
    // the ledger row holds the time up to its own write; the caller sizes the next chunk by
    // the time through the commit, where a slow disk or a replica wait shows
    outcome.duration_ms = elapsed_ms(started);
    Ok(outcome)
}

/// PostgreSQL: for the chunk's transaction the session is named after the run
/// (`sti-rollout/<env>/run-<id>`), so a DBA who sees it in `pg_stat_activity` or a lock graph
/// knows whose it is; the name reverts at commit.
pub(super) async fn name_session(tx: &mut Tx<'_>, dialect: Dialect, run_id: i64) -> Result<(), EngineError> {
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

pub(super) fn elapsed_ms(since: Instant) -> i64 {
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
async fn copy_chunk_postgres(
    tx: &mut Tx<'_>,
    run_id: i64,
    from: i64,
    to: i64,
) -> Result<ChunkCounts, EngineError> {
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
                (select count(*) from school_projects where project_id > $1 and project_id <= $2) as school_present,
                (select count(*) from self_study_projects where project_id > $1 and project_id <= $2) as self_study_present,
                (select count(*) from s) as school_created,
                (select count(*) from t) as self_study_created,
                (select count(*) from d) as errors"
    ))
    .bind(from)
    .bind(to)
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
async fn copy_chunk_sqlite(
    tx: &mut Tx<'_>,
    run_id: i64,
    from: i64,
    to: i64,
) -> Result<ChunkCounts, EngineError> {
    let rows = classified();
    let counts = sqlx::query(
        "select (select count(*) from projects where id > $1 and id <= $2) as rows_read,
                (select count(*) from school_projects where project_id > $1 and project_id <= $2) as school,
                (select count(*) from self_study_projects where project_id > $1 and project_id <= $2) as self_study",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&mut **tx)
    .await?;
    let (rows_read, school_present, self_study_present): (i64, i64, i64) =
        (counts.try_get("rows_read")?, counts.try_get("school")?, counts.try_get("self_study")?);

    let mut created = [0_i64; 2];
    for (i, subtype) in Subtype::ALL.into_iter().enumerate() {
        created[i] = sqlx::query(&subtype.insert_from(&rows, "$3", true))
            .bind(from)
            .bind(to)
            .bind(run_id)
            .execute(&mut **tx)
            .await?
            .rows_affected() as i64;
    }
    let [school_created, self_study_created] = created;

    // always, as on PostgreSQL: a row can be rejected and still be counted present (its
    // subtype row predates a change that made it dirty), so the counts cannot tell
    let errors = sqlx::query(&insert_dead_letters_from(&rows, "$3", "$4"))
        .bind(from)
        .bind(to)
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
/// in the active slot), and the whole chunk is rolled back. Times are the database's.
pub(super) async fn record_chunk(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    held: &Held,
    chunk: &ChunkOutcome,
) -> Result<(), EngineError> {
    let now = dialect.now_ms_sql();
    let moved = sqlx::query(&format!(
        "update sti_backfill_runs
         set checkpoint = $1, chunks = chunks + 1, rows_read = rows_read + $2,
             school_created = school_created + $3, self_study_created = self_study_created + $4,
             school_skipped = school_skipped + $5, self_study_skipped = self_study_skipped + $6,
             errors = errors + $7, lease_expires_at = {now} + $8, updated_at = {now}
         where id = $9 and fencing_token = $10 and checkpoint = $11
           and active_slot = 1 and state = 'running'"
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
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(EngineError::LeaseLost { run_id: held.run.id });
    }
    sqlx::query(&format!(
        "insert into sti_backfill_chunks (run_id, chunk_no, from_id, to_id, rows_read, school_created,
            self_study_created, school_skipped, self_study_skipped, errors, duration_ms, committed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, {now})"
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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
    if let Some(active) = runs::active(db).await? {
        if active.kind == kind && start.resume_from.is_none() {
            return Ok(Beginning::TakeOver { run_id: active.id });
        }
    }
    let (low, high) = match start.resume_from {
        Some(from) if from < 0 => return Err(EngineError::NegativeResume(from)),
        Some(from) if from > high => return Err(EngineError::ResumeBeyondEnd { given: from, last: high }),
        Some(from) => (from, high),
        // what a failed run committed stays committed: go on after it, over its range and
        // whatever was added since
        None => match runs::latest(db, kind).await? {
            Some(failed) if failed.state == RunState::Failed => {
                tracing::info!(environment = %start.env, failed_run = failed.id, checkpoint = failed.checkpoint,
                    "continuing after the failed run's checkpoint");
                (failed.checkpoint, high.max(failed.high_id))
            }
            _ => (super::keys::start_before(db, super::keys::walked_by(kind)).await?, high),
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
    }))
}

/// Does what [`plan_begin`] decided: a take-over fails when the run is no longer active or its
/// lease is live, a new run when another became active.
pub async fn carry_out(db: &Database, beginning: &Beginning, start: &Start) -> Result<Held, EngineError> {
    let owner = super::runner_name();
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

/// What the loop tells its caller after every chunk and state change.
pub type Observer<'a> = dyn FnMut(&runs::RunRecord, Option<&ChunkOutcome>) + Send + 'a;

/// One chunk's work, boxed so the loop can take either step.
pub(super) type StepFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ChunkOutcome, EngineError>> + Send + 'a>>;

/// The step a run repeats: a backfill chunk or a rollback chunk.
pub(super) type Step = for<'a> fn(&'a Database, &'a Held, i64, i64) -> StepFuture<'a>;

fn backfill_step<'a>(db: &'a Database, held: &'a Held, from: i64, to: i64) -> StepFuture<'a> {
    Box::pin(backfill_chunk(db, held, from, to))
}

/// Runs a held run — backfill, rollback or reconcile, each its own chunk step — to its end.
pub async fn run(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    held: Held,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let step: Step = match held.run.kind {
        RunKind::Backfill => backfill_step,
        RunKind::Rollback => super::rollback::step,
        RunKind::Reconcile => super::reconcile::step,
    };
    drive(db, control, env, held, step, observer).await
}

/// The loop: read requests and pacing, do one chunk, mirror, pause; until the frozen upper
/// bound is reached, the run is cancelled, or it fails.
pub(super) async fn drive(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    held: Held,
    step: Step,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let span =
        tracing::info_span!("run", environment = %env, run_id = held.run.id, kind = held.run.kind.as_str());
    drive_in_span(db, control, env, held, step, observer).instrument(span).await
}

/// The loop, and the run's end when it stops on an error: whatever failed — a chunk, reading
/// the run, renewing its lease, clearing a request — the run is marked failed, or, when even
/// that cannot be written, left to its lease with the log saying so.
async fn drive_in_span(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    mut held: Held,
    step: Step,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let writer = mirror::Writer::start(control, env, db);
    if held.run.rows_expected.is_none() {
        tokio::spawn(count_rows_expected(db.clone(), held.run.clone()));
    }
    let result = match drive_loop(db, control, env, &mut held, step, &writer, observer).await {
        Ok(run) => Ok(run),
        Err(EngineError::LeaseLost { run_id }) => Err(EngineError::LeaseLost { run_id }),
        Err(error) => {
            end_as_failed(db, &writer, &mut held, &error, observer).await;
            Err(error)
        }
    };
    writer.finish(MIRROR_FLUSH, env).await;
    result
}

/// Counts the rows the run expects, for its progress and ETA, and records the count; a run
/// that ends first simply goes by its keys.
async fn count_rows_expected(db: Database, run: runs::RunRecord) {
    let counted = async {
        let rows = super::keys::rows_between(&db, run.kind, run.low_id, run.high_id).await?;
        runs::set_rows_expected(&db, run.id, rows).await
    };
    if let Err(error) = counted.await {
        tracing::warn!(run_id = run.id, %error, "cannot count the rows the run expects; its progress goes by its keys");
    }
}

/// How long a run's end waits for the control database to take its last states.
const MIRROR_FLUSH: Duration = Duration::from_secs(5);

/// Marks the run failed with `error` as its reason. The error may be the connection itself,
/// so the write is tried a few times, about three seconds in all; a runner that lost its lease
/// writes nothing.
async fn end_as_failed(
    db: &Database,
    writer: &mirror::Writer,
    held: &mut Held,
    error: &EngineError,
    observer: &mut Observer<'_>,
) {
    let message = error.to_string();
    let mut last = None;
    for attempt in 0..4_u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        // held in memory is a state that was written (every non-final state may fail), and the
        // write is fenced by the token
        if held.run.state.is_final() {
            return;
        }
        match held.transition(db, RunState::Failed, Some(&message)).await {
            Ok(()) => {
                tracing::error!(%error, "the run failed and is marked failed; the next run continues after its checkpoint");
                writer.run(&held.run);
                observer(&held.run, None);
                return;
            }
            Err(EngineError::LeaseLost { .. }) => {
                tracing::error!(%error, "the run stopped; another runner holds it now, so it is theirs to end");
                return;
            }
            Err(e) => last = Some(e),
        }
    }
    let why = last.map(|e| e.to_string()).unwrap_or_default();
    tracing::error!(
        %error,
        cannot_mark_failed = %why,
        lease_seconds = held.lease_ms / 1000,
        "the run stopped but could not be marked failed: it stays active until its lease expires, then the console \
         shows its runner gone and offers to take it over"
    );
}

async fn drive_loop(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    held: &mut Held,
    step: Step,
    writer: &mirror::Writer,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let chunk_size = held.run.pacing.chunk_size;
    let mut turns = Turns {
        db,
        control,
        env,
        step,
        writer,
        chunk_size,
        operator_chunk: chunk_size,
        // a third of the lease: two renewals may be missed before it runs out
        renew_every: Duration::from_millis((held.lease_ms / 3).max(50) as u64),
        last_renewal: Instant::now(),
        recent: std::collections::VecDeque::new(),
    };
    observer(&held.run, None);
    let mut fault: Option<(Instant, u32)> = None;
    loop {
        let error = match turns.turn(held, observer).await {
            Ok(Turn::Ended) => return Ok(held.run.clone()),
            Ok(Turn::Next) => {
                if fault.take().is_some() || held.run.hold.is_some() {
                    tracing::info!("the database answers again: the run goes on");
                    held.run.hold = None;
                    writer.run(&held.run);
                    observer(&held.run, None);
                }
                continue;
            }
            Ok(Turn::Hold(mut hold)) => {
                // throttled: the turn said why and for how long; nothing failed. Held for the
                // same signal as before, it is held since then
                fault = None;
                if let Some(before) =
                    held.run.hold.as_ref().filter(|b| b.kind == hold.kind && b.label == hold.label)
                {
                    hold.since_ms = before.since_ms;
                }
                turns.hold(held, hold, observer).await?;
                continue;
            }
            Err(error) => error,
        };
        let super::faults::Fault::Retryable(reason) = super::faults::classify(&error) else {
            return Err(error);
        };
        let retry = &held.policy.retry;
        let (since, attempt) = match fault {
            Some((since, attempt)) => (since, attempt + 1),
            None => (Instant::now(), 1),
        };
        if elapsed_ms(since) >= retry.give_up_after_ms {
            tracing::error!(%error, waited_ms = elapsed_ms(since), "the fault lasted longer than the run waits: the run fails");
            return Err(error);
        }
        fault = Some((since, attempt));
        let wait = retry.backoff_ms(attempt, jitter());
        let since_ms = match &held.run.hold {
            Some(hold) if hold.kind == HoldKind::Waiting => hold.since_ms,
            _ => now_ms() - elapsed_ms(since),
        };
        tracing::warn!(%error, attempt, wait_ms = wait, "a retryable fault: the run waits and tries again");
        if reason.starts_with("statement timeout") && turns.chunk_size > 1 {
            // the same chunk would time out again: half of it may not
            turns.chunk_size = (turns.chunk_size / 2).max(1);
            tracing::info!(
                chunk_size = turns.chunk_size,
                "a chunk ran into the statement timeout: halving the chunk size"
            );
        }
        let label = reason.split(" (").next().unwrap_or_default().to_owned();
        let hold = Hold { kind: HoldKind::Waiting, reason, label, since_ms, next_try_ms: now_ms() + wait };
        turns.hold(held, hold, observer).await?;
    }
}

/// What one turn of the loop came to.
enum Turn {
    /// Go on with the next turn.
    Next,
    /// The run reached a final state.
    Ended,
    /// Hold (a health signal is over its threshold) until the hold's next try.
    Hold(Hold),
}

/// The loop's state between turns.
struct Turns<'a> {
    db: &'a Database,
    control: Option<&'a Database>,
    env: Environment,
    step: Step,
    writer: &'a mirror::Writer,
    chunk_size: i64,
    /// The chunk size as the run row last had it: a change there is the operator's.
    operator_chunk: i64,
    renew_every: Duration,
    last_renewal: Instant,
    /// Of the last chunks, which mostly failed: more than half their rows refused (the
    /// breaker's window).
    recent: std::collections::VecDeque<bool>,
}

impl Turns<'_> {
    /// Says the run holds — mirrored, observed — and sleeps until the hold's next try. The lease
    /// is renewed when the database answers (a lock timeout, a throttle: the runner is alive);
    /// while it does not, the lease may run out, another runner may take the run over, and this
    /// one learns so at its next turn and stops.
    async fn hold(
        &mut self,
        held: &mut Held,
        hold: Hold,
        observer: &mut Observer<'_>,
    ) -> Result<(), EngineError> {
        if hold.kind == HoldKind::Waiting {
            match held.renew(self.db).await {
                Ok(()) => self.last_renewal = Instant::now(),
                Err(EngineError::LeaseLost { run_id }) => return Err(EngineError::LeaseLost { run_id }),
                Err(_) => {} // the database does not answer: that is what the run waits for
            }
        }
        let wait = (hold.next_try_ms - now_ms()).max(0) as u64;
        held.run.hold = Some(hold);
        self.writer.run(&held.run);
        observer(&held.run, None);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        Ok(())
    }

    /// One turn: read the run, apply a request, hold while paused or throttled, or do one chunk.
    async fn turn(&mut self, held: &mut Held, observer: &mut Observer<'_>) -> Result<Turn, EngineError> {
        let (db, writer) = (self.db, self.writer);
        held.refresh(db).await?;
        if held.run.state.is_final() {
            // ended by this runner in a turn whose answer was lost (the commit went through)
            return Ok(Turn::Ended);
        }
        if held.run.pacing.chunk_size != self.operator_chunk {
            // the operator changed it while we ran: theirs wins over the adaptive size
            self.operator_chunk = held.run.pacing.chunk_size;
            self.chunk_size = self.operator_chunk;
        }
        if let Some(request) = held.run.requested {
            let to = match (request, held.run.state) {
                (RunRequest::Pause, RunState::Running) => RunState::Paused,
                (RunRequest::Resume, RunState::Paused) => RunState::Running,
                (RunRequest::Cancel, _) => RunState::Cancelled,
                (_, state) => state,
            };
            if to != held.run.state {
                held.transition(db, to, None).await?;
            } else {
                clear_request(db, held).await?;
            }
            tracing::info!(request = request.as_str(), state = %held.run.state, "operator request applied");
            held.run.hold = None;
            writer.run(&held.run);
            observer(&held.run, None);
            return Ok(if held.run.state.is_final() { Turn::Ended } else { Turn::Next });
        }
        if held.run.state == RunState::Paused {
            if self.last_renewal.elapsed() >= self.renew_every {
                keep_alive(db, writer, held).await?;
                self.last_renewal = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            return Ok(Turn::Next);
        }
        if held.run.checkpoint >= held.run.high_id {
            held.transition(db, RunState::Completed, None).await?;
            writer.run(&held.run);
            observer(&held.run, None);
            return Ok(Turn::Ended);
        }
        if held.run.kind == RunKind::Rollback {
            // the gate refuses the flag while this run is active; this catches a flag set around
            // it (by an override, or straight in the control database) before the next delete.
            // The flag lives in the control database, so it cannot be read in the chunk's own
            // transaction on the target.
            if let Some(control) = self.control {
                super::rollback::ensure_flag_off(control, self.env).await?;
            }
        }
        if let Some(hold) = super::throttle::check(db, &held.policy.throttle).await? {
            // holding renews the lease as a pause does: the runner is alive
            if self.last_renewal.elapsed() >= self.renew_every {
                held.renew(db).await?;
                self.last_renewal = Instant::now();
            }
            return Ok(Turn::Hold(hold));
        }
        let from = held.run.checkpoint;
        let walked = super::keys::walked_by(held.run.kind);
        let to = match &held.run.ids {
            Some(ids) => super::reconcile::chunk_end(ids, from, self.chunk_size),
            None => super::keys::chunk_end(db, walked, from, self.chunk_size, held.run.high_id).await?,
        };
        let (chunk, rows, refused) = self.copy(held, from, to, observer).await?;
        self.breaker(held, rows, refused)?;
        tracing::debug!(chunk = chunk.chunk_no, from, to, duration_ms = chunk.duration_ms, "chunk committed");
        let pacing = Pacing { chunk_size: self.chunk_size, ..held.run.pacing };
        let next = pacing.next_chunk_size(chunk.rows_read, chunk.duration_ms.max(0) as u64);
        if next != self.chunk_size && runs::persist_chunk_size(db, held, self.operator_chunk, next).await? {
            // the run row holds the adapted size (a runner taking over starts from it, the
            // console shows it); an operator's change since stays theirs
            self.operator_chunk = next;
        }
        self.chunk_size = next;
        // the pause between chunks may outlast the lease (60 s against 30 s): renew on the way
        let mut left = Duration::from_millis(held.run.pacing.pause_ms.max(0) as u64);
        while !left.is_zero() {
            let step = left.min(self.renew_every);
            tokio::time::sleep(step).await;
            left -= step;
            if !left.is_zero() {
                keep_alive(db, writer, held).await?;
            }
        }
        self.last_renewal = Instant::now();
        Ok(Turn::Next)
    }

    /// Copies `(from, to]` as one chunk; a chunk whose rows the target refuses, again and
    /// again, is split in halves down to the single row that is refused, which becomes a dead
    /// letter with the target's error (a rollback chunk is not split: its error fails the run).
    /// Returns the last committed chunk, the rows read over `(from, to]` and how many of them
    /// were refused.
    async fn copy(
        &mut self,
        held: &mut Held,
        from: i64,
        to: i64,
        observer: &mut Observer<'_>,
    ) -> Result<(ChunkOutcome, i64, i64), EngineError> {
        let db = self.db;
        let walked = super::keys::walked_by(held.run.kind);
        let mut ranges = vec![(from, to)];
        let mut last = None;
        let (mut rows_read, mut refused) = (0, 0);
        while let Some((a, b)) = ranges.pop() {
            let mut tries = 0;
            let outcome = loop {
                match (self.step)(db, held, a, b).await {
                    Ok(chunk) => break Ok(chunk),
                    Err(error) => match super::faults::classify(&error) {
                        super::faults::Fault::Rows(reason) if held.run.kind == RunKind::Backfill => {
                            tries += 1;
                            tracing::warn!(%error, from = a, to = b, tries, "the target refused rows of the chunk");
                            if tries >= held.policy.retry.split_after {
                                break Err((error, reason));
                            }
                        }
                        _ => return Err(error),
                    },
                }
            };
            let chunk = match outcome {
                Ok(chunk) => chunk,
                Err((error, reason)) => {
                    let rows = super::keys::rows_between(db, held.run.kind, a, b).await?;
                    if rows > 1 {
                        let mid = super::keys::chunk_end(db, walked, a, rows / 2, b).await?;
                        tracing::info!(from = a, to = b, mid, rows, "splitting the refused chunk in halves");
                        ranges.push((mid, b));
                        ranges.push((a, mid));
                        continue;
                    }
                    if rows == 0 {
                        // nothing to isolate: the error is not the rows'
                        return Err(error);
                    }
                    tracing::warn!(from = a, to = b, %reason, "one row is refused: it becomes a dead letter");
                    let chunk = refuse_row(db, held, a, b, &reason).await?;
                    refused += chunk.errors;
                    chunk
                }
            };
            rows_read += chunk.rows_read;
            held.refresh(db).await?;
            // a chunk went through: whatever the run waited for is over
            held.run.hold = None;
            self.writer.chunk(&held.run, &chunk);
            observer(&held.run, Some(&chunk));
            last = Some(chunk);
        }
        last.map(|chunk| (chunk, rows_read, refused))
            .ok_or_else(|| EngineError::Corrupt(format!("no chunk was committed over ({from}, {to}]")))
    }

    /// The failure-ratio breaker: fails the run when most of its recent chunks mostly failed —
    /// more than half of their rows refused: a broken target, not a few poison rows (a chunk of
    /// 5 000 with one refused row did not fail).
    fn breaker(&mut self, held: &Held, rows: i64, refused: i64) -> Result<(), EngineError> {
        let retry = &held.policy.retry;
        let window = retry.breaker_window.max(1) as usize;
        self.recent.push_back(refused > 0 && refused * 2 > rows);
        while self.recent.len() > window {
            self.recent.pop_front();
        }
        let failed = self.recent.iter().filter(|r| **r).count();
        let seen = self.recent.len();
        if seen >= window.min(3) && failed as f64 > retry.breaker_ratio * seen as f64 {
            return Err(EngineError::Breaker { failed, seen });
        }
        Ok(())
    }
}

/// The one row of `(from, to]` that the target refuses: recorded as a dead letter with the
/// target's error, and the checkpoint moved past it, in one fenced transaction.
async fn refuse_row(
    db: &Database,
    held: &Held,
    from: i64,
    to: i64,
    reason: &str,
) -> Result<ChunkOutcome, EngineError> {
    let started = Instant::now();
    let mut tx = db.begin_write().await?;
    let id: Option<i64> =
        sqlx::query_scalar("select id from projects where id > $1 and id <= $2 order by id limit 1")
            .bind(from)
            .bind(to)
            .fetch_optional(&mut *tx)
            .await?;
    // deleted since it was refused: nothing to record, the checkpoint moves on
    let Some(id) = id else {
        let chunk = ChunkOutcome {
            chunk_no: held.run.chunks + 1,
            from_id: from,
            to_id: to,
            duration_ms: elapsed_ms(started),
            ..ChunkOutcome::default()
        };
        record_chunk(&mut tx, db.dialect(), held, &chunk).await?;
        tx.commit().await?;
        return Ok(chunk);
    };
    sqlx::query(
        "insert into sti_backfill_dead_letters (run_id, project_id, reason, recorded_at) values ($1, $2, $3, $4)
         on conflict (run_id, project_id) do update set reason = excluded.reason",
    )
    .bind(held.run.id)
    .bind(id)
    .bind(format!("{REFUSED_PREFIX}{reason}"))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let chunk = ChunkOutcome {
        chunk_no: held.run.chunks + 1,
        from_id: from,
        to_id: to,
        rows_read: 1,
        errors: 1,
        duration_ms: elapsed_ms(started),
        ..ChunkOutcome::default()
    };
    record_chunk(&mut tx, db.dialect(), held, &chunk).await?;
    tx.commit().await?;
    Ok(chunk)
}

/// How a dead letter of a row the target refused begins (the rest is the target's error).
pub const REFUSED_PREFIX: &str = "refused: ";

/// A number in `[0, 1)` that differs from runner to runner and try to try.
fn jitter() -> f64 {
    // the operating system's generator, as `db::random_hex` uses it
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    (OsRng.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
}

/// Renews the lease and mirrors the run, so the console sees a live runner (a paused run, a
/// long pause between chunks) and never offers to take it over.
async fn keep_alive(db: &Database, writer: &mirror::Writer, held: &mut Held) -> Result<(), EngineError> {
    held.renew(db).await?;
    held.refresh(db).await?;
    writer.run(&held.run);
    Ok(())
}

/// Clears the request the runner read and acted on, and only that one: a request written since
/// (a cancel after a pause, the emergency stop's) stays for the next turn of the loop.
async fn clear_request(db: &Database, held: &Held) -> Result<(), EngineError> {
    sqlx::query(
        "update sti_backfill_runs set requested = null
         where id = $1 and fencing_token = $2 and requested = $3",
    )
    .bind(held.run.id)
    .bind(held.token)
    .bind(held.run.requested.map(RunRequest::as_str))
    .execute(db.pool())
    .await?;
    Ok(())
}
