//! DDL on the tables the application writes (`projects` and the subtype tables): the capture's
//! triggers, deferred validation's keys. Two rules keep it from hurting the application:
//!
//! - **The application's lock order.** An application write locks `projects`, then — through
//!   the capture or its own dual write — a subtype table. DDL that took a subtype table first
//!   (`alter table school_projects drop constraint …` locks it, then `projects`) deadlocks with
//!   it; [`lock_in_application_order`] takes `projects` first.
//! - **Short waits, many tries.** A lock request queues every later application write behind
//!   it, so a try waits [`TRY_LOCK_TIMEOUT`] at most, then gives way and tries again after a
//!   backoff with jitter ([`with_tries`]), for as long as the caller allows, saying so in the log
//!   with the sessions that hold the lock.

use super::EngineError;
use crate::db::{Database, Dialect};
use crate::domain::policy::Retry;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long one try waits for its locks: the longest an application write queues behind it.
pub const TRY_LOCK_TIMEOUT: Duration = Duration::from_millis(100);

/// How a lock is asked for on PostgreSQL (`lock table … in <mode> mode`).
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// `create trigger`, `alter table … add foreign key … not valid`.
    ShareRowExclusive,
    /// `alter table … drop constraint` (on both tables of a foreign key).
    AccessExclusive,
}

impl Mode {
    fn sql(self) -> &'static str {
        match self {
            Self::ShareRowExclusive => "share row exclusive",
            Self::AccessExclusive => "access exclusive",
        }
    }
}

/// Sets the try's lock timeout and takes `projects`, then the subtype tables, in `mode`, the
/// order application writes take them (PostgreSQL; SQLite's write transaction holds the whole
/// database already).
pub async fn lock_in_application_order(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    lock_timeout: Duration,
    mode: Mode,
) -> Result<(), EngineError> {
    if dialect != Dialect::Postgres {
        return Ok(());
    }
    sqlx::query(&format!("set local lock_timeout = '{}ms'", lock_timeout.as_millis().max(1)))
        .execute(&mut **tx)
        .await?;
    let mode = mode.sql();
    sqlx::query(&format!("lock table projects in {mode} mode")).execute(&mut **tx).await?;
    sqlx::query(&format!("lock table school_projects, self_study_projects in {mode} mode"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether `error` passes (a lock that could not be had now, a deadlock, SQLite's busy database,
/// a lost connection): worth another try.
fn passes(error: &EngineError) -> bool {
    matches!(super::faults::classify(error), super::faults::Fault::Retryable(_))
}

/// The waits between tries: the runs' backoff ([`Retry::backoff_ms`]), from 100 ms up to 2 s.
fn backoff() -> Retry {
    Retry { first_backoff_ms: 100, max_backoff_ms: 2_000, ..Retry::default() }
}

/// Runs `attempt` until it succeeds, fails otherwise than on a passing fault (a lock above
/// all), or `give_up_after` has passed: between tries it waits as [`backoff`] says, with jitter
/// (application transactions that end together do not meet the next try together). Says what
/// it waits for, and who holds the lock, every few seconds.
pub async fn with_tries<T, F, Fut>(
    db: &Database,
    what: &str,
    give_up_after: Duration,
    mut attempt: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let started = Instant::now();
    let mut said = Instant::now();
    let mut tries: u32 = 0;
    loop {
        tries += 1;
        let error = match attempt().await {
            Ok(done) => {
                if tries > 1 {
                    tracing::info!(
                        what,
                        tries,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "got the locks"
                    );
                }
                return Ok(done);
            }
            Err(error) if passes(&error) => error,
            Err(error) => return Err(error),
        };
        if started.elapsed() >= give_up_after {
            let holders = lock_holders(db).await;
            return Err(EngineError::LockWait {
                what: what.to_owned(),
                waited_s: started.elapsed().as_secs(),
                holders,
            });
        }
        if tries == 1 || said.elapsed() >= Duration::from_secs(5) {
            said = Instant::now();
            let holders = lock_holders(db).await;
            tracing::warn!(what, tries, %error, %holders,
                "waiting for the locks on projects behind the application's transactions");
        }
        let wait = backoff().backoff_ms(tries, super::backfill::jitter());
        tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    }
}

/// The sessions that hold a lock on `projects` or a subtype table (PostgreSQL), for the log and
/// the error: pid, how long their transaction has been open, what they run.
pub async fn lock_holders(db: &Database) -> String {
    if db.dialect() != Dialect::Postgres {
        return "another connection's write transaction".into();
    }
    let rows: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
        "select 'pid ' || a.pid || coalesce(', transaction open '
                || cast(cast(extract(epoch from now() - a.xact_start) as bigint) as text) || ' s', '')
                || coalesce(', ' || a.state || ': ' || left(a.query, 80), ' (another role''s session: its query is \
                   hidden unless the engine''s role has pg_read_all_stats)')
         from pg_stat_activity a
         where a.pid <> pg_backend_pid() and a.pid in (
             select l.pid from pg_locks l
             where l.granted and l.relation in (
                 to_regclass('projects'), to_regclass('school_projects'), to_regclass('self_study_projects')))
         order by a.xact_start limit 5",
    )
    .fetch_all(db.pool())
    .await;
    match rows {
        Ok(rows) if rows.is_empty() => "no session holds one now".into(),
        Ok(rows) => rows.join("; "),
        Err(error) => format!("cannot be read ({error})"),
    }
}
