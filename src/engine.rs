//! (ssr) The backfill engine: runs that copy legacy rows into the subtype tables in keyset
//! chunks, dry-runs, verification and rollback — against one environment's target database,
//! with the control database mirroring what happened. Independent of the web layer: the CLI and
//! the console call the same functions.

pub mod backfill;
pub mod blockers;
pub mod capture;
pub mod ddl;
pub mod dead_letters;
pub mod deferred;
pub mod dry_run;
pub mod faults;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod mirror;
pub mod operate;
pub mod promise;
pub mod reconcile;
pub mod rollback;
pub mod runs;
pub mod slices;
pub mod throttle;
pub mod verify;
pub mod workers;

use crate::db::DbError;
use crate::domain::pacing::PacingError;
use crate::domain::run::InvalidTransition;

/// Why a run, dry-run, verification or rollback did not do its work.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("run #{run_id} is already active in this environment ({state}, held by {owner} for {seconds_left} s more); wait for it, or pause or cancel it")]
    Busy { run_id: i64, state: String, owner: String, seconds_left: i64 },
    #[error(
        "run #{run_id} was taken over by another runner or ended outside this one; this runner committed \
         nothing more and stopped"
    )]
    LeaseLost { run_id: i64 },
    #[error("rollback refused: ENABLE_STI is on in {env}; turn the flag off first")]
    FlagOn { env: String },
    #[error(
        "{what} in {env} is not allowed yet: {reason}. An admin can override the gate with a written reason"
    )]
    GateClosed { env: String, what: String, reason: String },
    #[error("run #{run_id} is not active any more ({state})")]
    NotActive { run_id: i64, state: String },
    #[error("no run is active in this environment")]
    NoActiveRun,
    #[error("no run #{0} in this environment")]
    NoSuchRun(i64),
    #[error("--resume-from {given} is beyond the last legacy id {last}")]
    ResumeBeyondEnd { given: i64, last: i64 },
    #[error("--resume-from must not be negative, not {0}")]
    NegativeResume(i64),
    #[error(transparent)]
    Pacing(#[from] PacingError),
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
    #[error(
        "the breaker stopped the run: {failed} of its last {seen} chunks had rows the target refused; \
         see the dead letters for the errors"
    )]
    Breaker { failed: usize, seen: usize },
    #[error(
        "cannot {what} the change capture on projects: {message}. Nothing else changed; try again when the \
         transactions holding the table have ended"
    )]
    Capture { what: &'static str, message: String },
    #[error(
        "{what} waited {waited_s} s for the locks on projects and the subtype tables, a moment at a time, \
         and gave up, changing nothing. The sessions holding them: {holders}. Try again when those \
         transactions have ended"
    )]
    LockWait { what: String, waited_s: u64, holders: String },
    #[error(
        "run #{run_id} reached the end of its range, but {problem}: it is not complete. It is marked \
         failed, and the next {kind} goes over the range again from there"
    )]
    Unfinished { run_id: i64, kind: &'static str, problem: String },
    #[error(
        "rows of {table} that the application wrote while its foreign key to projects was off have no \
         project (ids {ids}). They are kept, and the key stays in place, not valid: new rows are \
         checked. Delete or mend those rows, then run the backfill again, which validates the key"
    )]
    Orphans { table: String, ids: String },
    #[error(
        "validating {key} took longer than session.fk_validation_timeout_ms ({limit_ms} ms) allows and was \
         stopped. The key is in place, not valid: new rows are checked. Raise the setting in the \
         environment's [policy.<env>.session] and run a backfill again: it validates the key when it completes"
    )]
    ValidationTimeout { key: String, limit_ms: i64 },
    #[error("nothing to reconcile: {0}")]
    NothingToReconcile(String),
    #[error("no emergency stop is waiting to be acknowledged here (someone acknowledged it already?)")]
    NoOpenStop,
    #[error("the health signal '{name}' cannot be read: {message}")]
    Signal { name: String, message: String },
    #[error(
        "slice {slice_no} of run #{run_id} was claimed by another worker (this one's claim ran out); this \
         worker committed nothing more there"
    )]
    ClaimLost { run_id: i64, slice_no: i64 },
    #[error("{0}")]
    NotSupported(String),
    #[error("a worker of the run gave up: {0}")]
    WorkerFailed(String),
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Whose move an [`EngineError`] is: the console answers with its HTTP status, the CLI with its
/// exit code, both from [`EngineError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (a pacing out of range, a resume point past the end): nothing
    /// was touched; fix it and ask again.
    BadInput,
    /// What the request names does not exist.
    NotFound,
    /// The request is fine but the state does not allow it now: a run is active, the gate is
    /// closed, the flag is on, the run ended.
    Conflict,
    /// A database cannot be used just now; its own words belong in the log, not the answer.
    Unavailable,
}

impl EngineError {
    /// The one place that decides which [`ErrorKind`] each error is (no catch-all: a new
    /// variant must be placed here).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Pacing(_)
            | Self::NegativeResume(_)
            | Self::ResumeBeyondEnd { .. }
            | Self::NotSupported(_) => ErrorKind::BadInput,
            Self::NoSuchRun(_) => ErrorKind::NotFound,
            Self::Busy { .. }
            | Self::LeaseLost { .. }
            | Self::ClaimLost { .. }
            | Self::WorkerFailed(_)
            | Self::FlagOn { .. }
            | Self::GateClosed { .. }
            | Self::NotActive { .. }
            | Self::NoActiveRun
            | Self::Transition(_)
            | Self::Breaker { .. }
            | Self::Capture { .. }
            | Self::LockWait { .. }
            | Self::Unfinished { .. }
            | Self::Orphans { .. }
            | Self::ValidationTimeout { .. }
            | Self::NothingToReconcile(_)
            | Self::NoOpenStop
            | Self::Signal { .. } => ErrorKind::Conflict,
            Self::Db(_) | Self::Corrupt(_) => ErrorKind::Unavailable,
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// Milliseconds since the Unix epoch: every time in the engine's tables.
pub use crate::db::now_ms;

/// Who runs: host and process, so an operator can tell runners apart.
pub fn runner_name() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether `owner` (a [`runner_name`]) is a process of this host that no longer exists: its run
/// need not wait for its lease to run out. Anything else — another host, a live process, a name
/// of another shape, a system without `/proc` — is not known to be gone. (A pid reused since
/// looks alive: the run then waits for its lease, as before.)
pub fn runner_is_gone(owner: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once(':') else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    host == host_name()
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}
