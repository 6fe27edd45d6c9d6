//! `sti-rollout migrate --env E`: the target migrations a database has not recorded, and
//! applying them with a short lock timeout once nothing is in a shape they cannot mend.

use super::{check, Difference};
use crate::db::pool::{Database, DbError};
use std::time::Duration;

/// A migration not yet recorded as applied, as `migrate` announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub version: i64,
    pub description: String,
}

/// The target migrations this database has not recorded (all of them without sqlx's table).
pub async fn pending(db: &Database) -> Result<Vec<Pending>, DbError> {
    let recorded: Vec<i64> = match sqlx::query_scalar("select version from _sqlx_migrations where success")
        .fetch_all(db.pool())
        .await
    {
        Ok(versions) => versions,
        // no bookkeeping table yet: nothing was applied
        Err(sqlx::Error::Database(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(crate::db::pool::migrator(crate::db::Schema::Target, db.dialect())
        .iter()
        .filter(|m| !recorded.contains(&m.version))
        .map(|m| Pending { version: m.version, description: m.description.to_string() })
        .collect())
}

/// How long `migrate` waits for a lock before it gives up, changing nothing.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// Why `migrate` did not change a target.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "{} differ in ways migrate does not change (it creates what is missing and makes the subtype \
         foreign keys cascade; it never alters a table that holds rows in another shape): {}. Change \
         or rename those tables yourself, then run migrate again",
        count(.0.len()), join(.0)
    )]
    Unmendable(Vec<Difference>),
    #[error(
        "a migration waited more than {} ms for a lock (an open transaction of the application holds \
         one on projects, most likely) and was rolled back: nothing was changed. Try again when the \
         database is quieter, or allow a longer wait with --lock-timeout-ms",
        .0.as_millis()
    )]
    LockTimeout(Duration),
    #[error("after migrating, {}", join(.0))]
    StillDiffers(Vec<Difference>),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 thing".into()
    } else {
        format!("{n} things")
    }
}

/// The differences as one sentence's list.
pub fn join(differences: &[Difference]) -> String {
    differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Brings a configured target to what the engine needs: refuses (changing nothing) when a
/// difference is not one it mends, then applies the pending migrations with `lock_timeout` set,
/// and checks again.
pub async fn migrate(db: &Database, lock_timeout: Duration) -> Result<(), MigrateError> {
    let unmendable: Vec<Difference> = check(db).await?.into_iter().filter(|d| !d.migrate_mends()).collect();
    if !unmendable.is_empty() {
        return Err(MigrateError::Unmendable(unmendable));
    }
    match db.migrate_with_lock_timeout(crate::db::Schema::Target, lock_timeout).await {
        Ok(()) => {}
        Err(e) if is_lock_timeout(&e) => return Err(MigrateError::LockTimeout(lock_timeout)),
        Err(e) => return Err(e.into()),
    }
    let left = check(db).await?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::StillDiffers(left))
    }
}

/// PostgreSQL's `lock_not_available` (55P03, what `lock_timeout` raises), or SQLite's busy
/// database.
fn is_lock_timeout(error: &DbError) -> bool {
    use sqlx::migrate::MigrateError::{Execute, ExecuteMigration};
    let DbError::Migrate {
        source: Execute(sqlx::Error::Database(e)) | ExecuteMigration(sqlx::Error::Database(e), _),
        ..
    } = error
    else {
        return false;
    };
    e.code().is_some_and(|code| code == "55P03" || code == "5" || code == "517")
}
