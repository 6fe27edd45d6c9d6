//! Parallel workers (PRODUCT §7): tasks that claim a run's slices (`engine::slices`) and copy
//! them chunk by chunk, in the process that holds the run's lease, on every console replica and
//! in `sti-rollout worker`. A worker follows the run row: it waits while the run is paused or
//! throttled, leaves when the run ends, and takes the pacing the operator sets. It never changes
//! the run's state: what it gives up on is written into its slice, and the run's holder fails
//! the run with it. The database is the only coordinator.

use super::backfill::{copy_range, Breaker, ChunkOutcome, Step};
use super::runs::{self, Held};
use super::slices::{self, Claim};
use super::{faults, mirror, EngineError};
use crate::db::{Database, Dialect};
use crate::domain::environment::Environment;
use crate::domain::pacing::Pacing;
use crate::domain::policy::Policy;
use crate::domain::run::{RunKind, RunState};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refuses what parallel workers cannot do: more than one worker on SQLite (one writer: a second
/// worker would only wait for the first), or for anything but a backfill.
/// The most workers per process a backfill on a target of `dialect` may have: one on SQLite
/// (one writer), [`crate::domain::pacing::MAX_WORKERS`] on PostgreSQL. The page offers as many.
pub fn most(dialect: Dialect) -> i64 {
    match dialect {
        Dialect::Sqlite => 1,
        Dialect::Postgres => crate::domain::pacing::MAX_WORKERS,
    }
}

pub fn check(dialect: Dialect, kind: RunKind, workers: i64) -> Result<(), EngineError> {
    crate::domain::pacing::check_workers(workers)?;
    if workers == 1 {
        return Ok(());
    }
    if workers > most(dialect) {
        return Err(EngineError::NotSupported(format!(
            "{workers} workers need a PostgreSQL target: SQLite has one writer, so a second worker would only \
             wait for the first; run with 1 worker"
        )));
    }
    if kind != RunKind::Backfill {
        return Err(EngineError::NotSupported(format!(
            "a {} runs as one loop; parallel workers spread a backfill",
            kind.as_str()
        )));
    }
    Ok(())
}

/// What a worker needs to work on a run.
#[derive(Clone)]
pub struct Crew {
    pub target: Database,
    pub control: Option<Database>,
    pub env: Environment,
    pub run_id: i64,
    /// The process's runner name; worker `n` is `<owner>#n`.
    pub owner: String,
    pub lease_ms: i64,
    pub policy: Arc<Policy>,
}

impl Crew {
    /// A crew of this process that joins a run it does not hold (a replica, `sti-rollout
    /// worker`): named after this process, with the default lease as its claims' length.
    pub fn joining(
        target: &Database,
        control: &Database,
        env: Environment,
        run_id: i64,
        policy: Arc<Policy>,
    ) -> Self {
        Self {
            target: target.clone(),
            control: Some(control.clone()),
            env,
            run_id,
            owner: super::runner_name(),
            lease_ms: runs::DEFAULT_LEASE_MS,
            policy,
        }
    }
}

/// The runs this process has workers on (by target and run), so the run's holder, a replica's
/// watch and `sti-rollout worker` never start a second crew here.
fn working() -> &'static Mutex<HashSet<(String, i64)>> {
    static WORKING: std::sync::OnceLock<Mutex<HashSet<(String, i64)>>> = std::sync::OnceLock::new();
    WORKING.get_or_init(Mutex::default)
}

/// Starts `count` workers on the crew's run in this process, unless it has some there already;
/// the handles of the workers started (empty when there were some).
pub fn join(crew: &Crew, count: i64) -> Vec<tokio::task::JoinHandle<Result<Tally, EngineError>>> {
    let key = (crew.target.url().to_string(), crew.run_id);
    {
        let mut working = working().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !working.insert(key.clone()) {
            return Vec::new();
        }
    }
    let left = Arc::new(std::sync::atomic::AtomicI64::new(count));
    (1..=count)
        .map(|n| {
            let (crew, key, left) = (crew.clone(), key.clone(), left.clone());
            tokio::spawn(async move {
                let name = format!("{}#{n}", crew.owner);
                let result = work(&crew, &name).await;
                if let Err(error) = &result {
                    tracing::error!(environment = %crew.env, run_id = crew.run_id, worker = %name, %error, "the worker stopped");
                }
                if left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                    working().lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                }
                result
            })
        })
        .collect()
}

/// What one worker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub chunks: i64,
    pub rows_read: i64,
}

fn step<'a>(db: &'a Database, held: &'a Held, from: i64, to: i64) -> super::backfill::StepFuture<'a> {
    Box::pin(super::backfill::backfill_chunk(db, held, from, to))
}

/// One worker, until the run ends or has no slice left to claim: claim a slice, copy its
/// chunks, claim the next. Faults of the database are waited out with the run's retry policy;
/// what it cannot get past is written into its slice (the run then fails) and returned.
pub async fn work(crew: &Crew, name: &str) -> Result<Tally, EngineError> {
    let writer = mirror::Writer::start(crew.control.as_ref(), crew.env, &crew.target);
    let mut worker = Worker {
        crew,
        name,
        writer: &writer,
        claim: None,
        chunk_size: None,
        operator_chunk: 0,
        breaker: Breaker::default(),
        fault: None,
        tally: Tally::default(),
    };
    let result = worker.run().await;
    if let (Err(error), Some(claim)) = (&result, worker.claim) {
        if let Err(e) = slices::give_up(&crew.target, &claim, &error.to_string()).await {
            tracing::warn!(worker = name, error = %e, "cannot record in the slice what the worker gave up on; its claim runs out instead");
        }
    }
    writer.finish(Duration::from_secs(5), crew.env).await;
    result
}

struct Worker<'a> {
    crew: &'a Crew,
    name: &'a str,
    writer: &'a mirror::Writer,
    claim: Option<Claim>,
    /// This worker's chunk size, adapted (`None` until the first chunk: the run's).
    chunk_size: Option<i64>,
    /// The run's chunk size as last read: a change is the operator's and wins.
    operator_chunk: i64,
    breaker: Breaker,
    fault: Option<(Instant, u32)>,
    tally: Tally,
}

/// What a worker's turn came to.
enum Next {
    Go,
    Wait(Duration),
    Leave,
}

impl Worker<'_> {
    async fn run(&mut self) -> Result<Tally, EngineError> {
        loop {
            let next = match self.turn().await {
                Ok(next) => {
                    self.fault = None;
                    next
                }
                Err(EngineError::ClaimLost { slice_no, .. }) => {
                    tracing::warn!(
                        worker = self.name,
                        slice_no,
                        "the slice's claim ran out and another worker has it"
                    );
                    self.claim = None;
                    Next::Go
                }
                // the run was taken over (its token moved) or ended: the next turn reads it again
                Err(EngineError::LeaseLost { .. }) => Next::Go,
                Err(error) => self.retry(error)?,
            };
            match next {
                Next::Go => {}
                Next::Wait(wait) => tokio::time::sleep(wait).await,
                Next::Leave => return Ok(self.tally),
            }
        }
    }

    /// A retryable fault is waited out as the run's own loop waits it out; anything else, or a
    /// fault that outlasts the policy, stops the worker.
    fn retry(&mut self, error: EngineError) -> Result<Next, EngineError> {
        let faults::Fault::Retryable(reason) = faults::classify(&error) else { return Err(error) };
        let retry = &self.crew.policy.retry;
        let (since, attempt) = match self.fault {
            Some((since, attempt)) => (since, attempt + 1),
            None => (Instant::now(), 1),
        };
        if super::backfill::elapsed_ms(since) >= retry.give_up_after_ms {
            return Err(error);
        }
        self.fault = Some((since, attempt));
        let wait = retry.backoff_ms(attempt, super::backfill::jitter());
        tracing::warn!(worker = self.name, %reason, attempt, wait_ms = wait, "a retryable fault: the worker waits and tries again");
        Ok(Next::Wait(Duration::from_millis(wait.max(0) as u64)))
    }

    async fn turn(&mut self) -> Result<Next, EngineError> {
        let db = &self.crew.target;
        let run = runs::get(db, self.crew.run_id).await?;
        if run.state.is_final() {
            return Ok(Next::Leave);
        }
        if run.state != RunState::Running {
            // paused: give the slice back, so whoever works when the run resumes may take it
            if let Some(claim) = self.claim.take() {
                slices::release(db, &claim).await?;
            }
            return Ok(Next::Wait(Duration::from_millis(250)));
        }
        if let Some(hold) = super::throttle::check(db, &self.crew.policy.throttle).await? {
            let wait = (hold.next_try_ms - super::now_ms()).clamp(50, 5_000) as u64;
            return Ok(Next::Wait(Duration::from_millis(wait)));
        }
        let claim = match self.claim {
            Some(claim) => claim,
            None => match slices::claim(db, run.id, self.name, self.crew.lease_ms).await? {
                Some(claim) => claim,
                None => {
                    let standing = slices::standing(db, run.id).await?;
                    return Ok(match (standing.open, standing.done) {
                        // every slice done: this worker's part is over
                        (0, done) if done > 0 => Next::Leave,
                        // not cut yet (the holder cuts at its first turn), or every open slice
                        // is claimed and one may come free (a worker gone, a pause)
                        _ => Next::Wait(Duration::from_millis(250)),
                    });
                }
            },
        };
        self.claim = Some(claim);
        if run.pacing.chunk_size != self.operator_chunk {
            self.operator_chunk = run.pacing.chunk_size;
            self.chunk_size = Some(self.operator_chunk);
        }
        let size = self.chunk_size.unwrap_or(run.pacing.chunk_size);
        let walked = super::keys::walked_by(run.kind);
        let from = claim.checkpoint;
        let to = super::keys::chunk_end(db, walked, from, size, claim.high_id).await?;
        let pacing = run.pacing;
        let mut held = Held {
            token: run.fencing_token,
            run,
            owner: self.crew.owner.clone(),
            lease_ms: self.crew.lease_ms,
            policy: self.crew.policy.clone(),
            worker: self.name.to_owned(),
            slice: Some(claim),
        };
        let writer = self.writer;
        let tally = &mut self.tally;
        let step: Step = step;
        let copied = copy_range(db, step, &mut held, from, to, &mut |held, chunk: &ChunkOutcome| {
            tally.chunks += 1;
            tally.rows_read += chunk.rows_read;
            writer.chunk(&held.run, chunk, &held.worker);
        })
        .await;
        // what committed moved the slice, whatever came after
        self.claim = held.slice.filter(|claim| claim.checkpoint < claim.high_id);
        let (chunk, rows, refused) = copied?;
        self.breaker.note(&self.crew.policy.retry, rows, refused)?;
        let adapted = Pacing { chunk_size: size, ..pacing };
        self.chunk_size = Some(adapted.next_chunk_size(chunk.rows_read, chunk.duration_ms.max(0) as u64));
        Ok(match pacing.pause_ms {
            0 => Next::Go,
            pause => Next::Wait(Duration::from_millis(pause as u64)),
        })
    }
}
