//! The backfill run: one idempotent chunk step (`chunk`), how a run begins (`begin`), and the
//! loop around it (here, a turn at a time in `turns`) that follows the run's pacing and the
//! operator's requests.

mod begin;
mod chunk;
mod turns;

pub use begin::{begin, begin_run, carry_out, plan, plan_begin, Beginning, Start};
pub use chunk::{backfill_chunk, ChunkOutcome};
pub(super) use chunk::{elapsed_ms, name_session, record_chunk};
pub use turns::REFUSED_PREFIX;
pub(super) use turns::{copy_range, jitter, Breaker};

use super::runs::{self, Held};
use super::{mirror, now_ms, EngineError};
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::run::{Hold, HoldKind, RunKind, RunRequest, RunState};
use std::time::{Duration, Instant};
use tracing::Instrument;
use turns::{Turn, Turns};

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
    // a run in slices counts its rows once, as it cuts them (`slices::cut`)
    if held.run.rows_expected.is_none() && held.run.workers == 1 {
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
    let lost = matches!(result, Err(EngineError::LeaseLost { .. }));
    if held.run.defer_fks && held.run.state != RunState::Completed && !lost {
        // ended otherwise: the keys come back not valid at once, so new rows are
        // checked again; the next backfill to complete validates them
        if let Err(error) =
            super::deferred::restore_with_tries(db, KEYS_BACK_WAIT.min(held.policy.retry.give_up_after()))
                .await
        {
            tracing::error!(%error, "cannot add the subtype tables' foreign keys back yet: they stay dropped \
                (the environment page and migrate --plan say so) until the next run or a console replica's \
                watch puts them back, as soon as the lock is free");
        }
    }
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

/// How long a deferred run's end goes on trying to put the keys back behind the application's
/// transactions before it leaves them to the next holder or a replica's watch.
const KEYS_BACK_WAIT: Duration = Duration::from_secs(30);

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
        breaker: turns::Breaker::default(),
        crew: None,
        keys_checked: false,
        promised: false,
    };
    let result = turn_until_the_end(&mut turns, held, observer).await;
    if result.is_ok() {
        // ended: the workers leave at their next turn (after an error they see the run failed
        // only once it is marked so, and the lease or their own turn takes care of them)
        turns.dismiss_crew().await;
    }
    result
}

async fn turn_until_the_end(
    turns: &mut Turns<'_>,
    held: &mut Held,
    observer: &mut Observer<'_>,
) -> Result<runs::RunRecord, EngineError> {
    let writer = turns.writer;
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
        let hold = Hold {
            kind: HoldKind::Waiting,
            reason,
            label,
            since_ms,
            next_try_ms: now_ms() + wait,
            tries: i64::from(attempt),
            // the limit counts from this runner's first try: a runner that took the run over
            // while it waited gives it the whole limit again
            gives_up_at_ms: Some(now_ms() - elapsed_ms(since) + retry.give_up_after_ms),
        };
        turns.hold(held, hold, observer).await?;
    }
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
