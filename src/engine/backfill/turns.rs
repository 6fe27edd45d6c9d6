//! One turn of the loop: read the operator's requests and the pacing, check the health
//! signals, do one chunk (or hold), mirror it; and the one refused row a chunk isolates.

use super::{clear_request, elapsed_ms, keep_alive, record_chunk, ChunkOutcome, Observer, Step};
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::pacing::Pacing;
use crate::domain::run::{Hold, HoldKind, RunKind, RunRequest, RunState};
use crate::domain::span::Span;
use crate::engine::runs::{self, Held};
use crate::engine::{mirror, now_ms, EngineError};
use std::time::{Duration, Instant};

/// What one turn of the loop came to.
pub(super) enum Turn {
    /// Go on with the next turn.
    Next,
    /// The run reached a final state.
    Ended,
    /// Hold (a health signal is over its threshold) until the hold's next try.
    Hold(Hold),
}

/// The loop's state between turns.
pub(super) struct Turns<'a> {
    pub(super) db: &'a Database,
    pub(super) control: Option<&'a Database>,
    pub(super) env: Environment,
    pub(super) step: Step,
    pub(super) writer: &'a mirror::Writer,
    pub(super) chunk_size: i64,
    /// The chunk size as the run row last had it: a change there is the operator's.
    pub(super) operator_chunk: i64,
    pub(super) renew_every: Duration,
    pub(super) last_renewal: Instant,
    /// Of the last chunks, which mostly failed (the breaker's window).
    pub(super) breaker: Breaker,
    /// A run in slices: this process's workers, once started (none when the process already
    /// had a crew on the run).
    pub(super) crew: Option<Vec<tokio::task::JoinHandle<Result<crate::engine::workers::Tally, EngineError>>>>,
    /// Whether this holder saw to the subtype tables' keys: dropped them for a deferred run,
    /// or put back keys an ended run left dropped.
    pub(super) keys_checked: bool,
    /// Whether this holder found the range holding what the run's kind promises (checked once,
    /// when the run reaches its end: a later step's retry does not scan it again).
    pub(super) promised: bool,
}

impl Turns<'_> {
    /// Says the run holds — mirrored, observed — and sleeps until the hold's next try. The lease
    /// is renewed when the database answers (a lock timeout, a throttle: the runner is alive);
    /// while it does not, the lease may run out, another runner may take the run over, and this
    /// one learns so at its next turn and stops.
    pub(super) async fn hold(
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
    pub(super) async fn turn(
        &mut self,
        held: &mut Held,
        observer: &mut Observer<'_>,
    ) -> Result<Turn, EngineError> {
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
        if !self.keys_checked {
            // before the first chunk, and inside the loop: a lock the application holds is waited
            // out as any fault is, the run saying so
            if held.run.defer_fks {
                crate::engine::deferred::prepare(db, held).await?;
            } else {
                crate::engine::deferred::restore(db, crate::engine::ddl::TRY_LOCK_TIMEOUT, Some(held.run.id))
                    .await?;
            }
            self.keys_checked = true;
        }
        if held.run.checkpoint >= held.run.high_id {
            // both steps may take long on a big table: the lease is renewed meanwhile
            let renewal = held.renewal();
            // the mirror hears each renewal: the console tells a long step from a dead runner
            let beating = held.run.clone();
            let beat = |expires: i64| {
                writer.run(&crate::engine::runs::RunRecord {
                    lease_expires_at: Some(expires),
                    ..beating.clone()
                })
            };
            if !self.promised {
                // "completed" is what the range holds, not where the checkpoint got to
                renewal.during(db, crate::engine::promise::check(db, held), &beat).await?;
                self.promised = true;
            }
            if held.run.kind == RunKind::Backfill
                && (held.run.defer_fks || crate::engine::deferred::pending(db).await?)
            {
                // the copy is done: the keys come back, validated once, before it is complete
                held.run.fk_validation_ms =
                    Some(renewal.during(db, crate::engine::deferred::validate(db, held), &beat).await?);
            }
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
                crate::engine::rollback::ensure_flag_off(control, self.env).await?;
            }
        }
        if let Some(hold) = crate::engine::throttle::check(db, &held.policy.throttle).await? {
            // holding renews the lease as a pause does: the runner is alive
            if self.last_renewal.elapsed() >= self.renew_every {
                held.renew(db).await?;
                self.last_renewal = Instant::now();
            }
            return Ok(Turn::Hold(hold));
        }
        if held.run.workers > 1 {
            return self.oversee(held, observer).await;
        }
        let from = held.run.checkpoint;
        let walked = crate::engine::keys::walked_by(held.run.kind);
        let to = match &held.run.ids {
            Some(ids) => crate::engine::reconcile::chunk_end(ids, from, self.chunk_size),
            None => {
                crate::engine::keys::chunk_end(db, walked, from, self.chunk_size, held.run.high_id).await?
            }
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

    /// A run in slices: the workers copy, the holder watches. It cuts the range (once), starts
    /// this process's workers, fails the run when a worker gave up, keeps the run's checkpoint at
    /// the slices' low-water mark (the run completes at the next turn once all are done) and
    /// keeps the lease.
    async fn oversee(&mut self, held: &mut Held, observer: &mut Observer<'_>) -> Result<Turn, EngineError> {
        use crate::engine::{slices, workers};
        let db = self.db;
        if self.crew.is_none() {
            slices::cut(db, &held.run).await?;
            let crew = workers::Crew {
                target: db.clone(),
                control: self.control.cloned(),
                env: self.env,
                run_id: held.run.id,
                owner: held.owner.clone(),
                lease_ms: held.lease_ms,
                policy: held.policy.clone(),
            };
            self.crew = Some(workers::join(&crew, held.run.workers));
        }
        if let Some(failed) = slices::standing(db, held.run.id).await?.failed {
            return Err(EngineError::WorkerFailed(failed));
        }
        slices::settle_checkpoint(db, held.run.id, held.token).await?;
        if self.last_renewal.elapsed() >= self.renew_every {
            keep_alive(db, self.writer, held).await?;
            self.last_renewal = Instant::now();
        }
        observer(&held.run, None);
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(Turn::Next)
    }

    /// Waits a little for this process's workers to leave after the run ended (they see it at
    /// their next turn), so a CLI run does not exit under them.
    pub(super) async fn dismiss_crew(&mut self) {
        for worker in self.crew.take().unwrap_or_default() {
            let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
        }
    }

    async fn copy(
        &mut self,
        held: &mut Held,
        from: i64,
        to: i64,
        observer: &mut Observer<'_>,
    ) -> Result<(ChunkOutcome, i64, i64), EngineError> {
        let writer = self.writer;
        copy_range(self.db, self.step, held, from, to, &mut |held, chunk| {
            writer.chunk(&held.run, chunk, &held.worker);
            observer(&held.run, Some(chunk));
        })
        .await
    }

    fn breaker(&mut self, held: &Held, rows: i64, refused: i64) -> Result<(), EngineError> {
        self.breaker.note(&held.policy.retry, rows, refused)
    }
}

/// Copies `(from, to]` as one chunk; a chunk whose rows the target refuses, again and again, is
/// split in halves down to the single row that is refused, which becomes a dead letter with the
/// target's error (a rollback chunk is not split: its error fails the run). Tells `committed`
/// of every chunk that commits. Returns the last committed chunk, the rows read over `(from,
/// to]` and how many of them were refused.
pub(in crate::engine) async fn copy_range(
    db: &Database,
    step: Step,
    held: &mut Held,
    from: i64,
    to: i64,
    committed: &mut (dyn FnMut(&Held, &ChunkOutcome) + Send),
) -> Result<(ChunkOutcome, i64, i64), EngineError> {
    let walked = crate::engine::keys::walked_by(held.run.kind);
    let mut ranges = vec![(from, to)];
    let mut last = None;
    let (mut rows_read, mut refused) = (0, 0);
    while let Some((a, b)) = ranges.pop() {
        let mut tries = 0;
        let outcome = loop {
            match step(db, held, a, b).await {
                Ok(chunk) => break Ok(chunk),
                Err(error) => match crate::engine::faults::classify(&error) {
                    crate::engine::faults::Fault::Rows(reason) if held.run.kind == RunKind::Backfill => {
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
                let rows = crate::engine::keys::rows_between(db, held.run.kind, a, b).await?;
                if rows > 1 {
                    let mid = crate::engine::keys::chunk_end(db, walked, a, rows / 2, b).await?;
                    if mid >= b {
                        // the two least ids, −2^63 and the next: no range ends between them
                        // (`span::end`), so the run fails with the target's error
                        return Err(error);
                    }
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
        if let Some(claim) = held.slice.as_mut() {
            // the slice moved: the next range of this worker starts there
            claim.checkpoint = chunk.to_id;
        }
        held.refresh(db).await?;
        // a chunk went through: whatever the run waited for is over
        held.run.hold = None;
        committed(held, &chunk);
        last = Some(chunk);
    }
    last.map(|chunk| (chunk, rows_read, refused))
        .ok_or_else(|| EngineError::Corrupt(format!("no chunk was committed over ({from}, {to}]")))
}

/// The failure-ratio breaker: fails the run when most of its recent chunks mostly failed — more
/// than half of their rows refused: a broken target, not a few poison rows (a chunk of 5 000
/// with one refused row did not fail).
#[derive(Default)]
pub(in crate::engine) struct Breaker {
    recent: std::collections::VecDeque<bool>,
}

impl Breaker {
    /// Notes a copied range: `rows` read, `refused` of them refused.
    pub(in crate::engine) fn note(
        &mut self,
        retry: &crate::domain::policy::Retry,
        rows: i64,
        refused: i64,
    ) -> Result<(), EngineError> {
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
    let span = Span::after(from, to);
    let id: Option<i64> =
        sqlx::query_scalar("select id from projects where id >= $1 and id <= $2 order by id limit 1")
            .bind(span.first)
            .bind(span.last)
            .fetch_optional(&mut *tx)
            .await?;
    // deleted since it was refused: nothing to record, the checkpoint moves on
    let Some(id) = id else {
        let mut chunk = ChunkOutcome {
            chunk_no: held.run.chunks + 1,
            from_id: from,
            to_id: to,
            duration_ms: elapsed_ms(started),
            ..ChunkOutcome::default()
        };
        record_chunk(&mut tx, db.dialect(), held, &mut chunk).await?;
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
    let mut chunk = ChunkOutcome {
        chunk_no: held.run.chunks + 1,
        from_id: from,
        to_id: to,
        rows_read: 1,
        errors: 1,
        duration_ms: elapsed_ms(started),
        ..ChunkOutcome::default()
    };
    record_chunk(&mut tx, db.dialect(), held, &mut chunk).await?;
    tx.commit().await?;
    Ok(chunk)
}

/// How a dead letter of a row the target refused begins (the rest is the target's error).
pub const REFUSED_PREFIX: &str = "refused: ";

/// A number in `[0, 1)` that differs from runner to runner and try to try.
pub(in crate::engine) fn jitter() -> f64 {
    // the operating system's generator, as `db::random_hex` uses it
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    (OsRng.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
}
