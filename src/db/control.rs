//! Queries on the control database: environments, flags and seed history.

use super::pool::{Database, DbError};
use crate::domain::environment::Environment;
use crate::domain::overview::FlagState;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The flag that switches an environment's application to the split tables.
pub const ENABLE_STI: &str = "ENABLE_STI";

/// Registers every environment with its flags (off) unless already there. Idempotent.
pub async fn register_environments(db: &Database) -> Result<(), DbError> {
    let now = super::now_rfc3339();
    let mut tx = db.begin_write().await?;
    for (position, env) in Environment::ALL.iter().enumerate() {
        sqlx::query(
            "insert into environments (name, position) values ($1, $2)
             on conflict (name) do nothing",
        )
        .bind(env.as_str())
        .bind(position as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into flags (environment, key, enabled, updated_at, updated_by)
             values ($1, $2, $3, $4, 'system')
             on conflict (environment, key) do nothing",
        )
        .bind(env.as_str())
        .bind(ENABLE_STI)
        .bind(false)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Every flag of `env`, by key.
pub async fn flags(db: &Database, env: Environment) -> Result<Vec<(String, FlagState)>, DbError> {
    let rows = sqlx::query(
        "select key, case when enabled then 1 else 0 end as enabled, updated_at, updated_by
         from flags where environment = $1 order by key",
    )
    .bind(env.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|row| Ok((row.try_get("key")?, flag_state(row)?))).collect()
}

/// The state of flag `key` in `env`, if the flag exists there.
pub async fn flag(db: &Database, env: Environment, key: &str) -> Result<Option<FlagState>, DbError> {
    // `case` turns sqlite's 0/1 and postgres' boolean into one integer type.
    let row = sqlx::query(
        "select case when enabled then 1 else 0 end as enabled, updated_at, updated_by
         from flags where environment = $1 and key = $2",
    )
    .bind(env.as_str())
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.as_ref().map(flag_state).transpose()?)
}

/// A flag's state from a row of `enabled` (0 or 1), `updated_at` and `updated_by`.
fn flag_state(row: &AnyRow) -> Result<FlagState, sqlx::Error> {
    Ok(FlagState {
        enabled: row.try_get::<i64, _>("enabled")? == 1,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

/// Sets flag `key` in `env` as `by`, with the audit entry `entry` makes of whether it was on
/// before, in the same transaction; returns whether it was on before. The flag must exist.
pub async fn set_flag<'a>(
    db: &Database,
    env: Environment,
    key: &str,
    enabled: bool,
    by: &str,
    entry: impl FnOnce(bool) -> super::audit::Entry<'a>,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let before: Option<i64> = sqlx::query_scalar(
        "select case when enabled then 1 else 0 end from flags where environment = $1 and key = $2",
    )
    .bind(env.as_str())
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?;
    let before = before == Some(1);
    // `$1 = 1` is a boolean on postgres and 0/1 on sqlite: the column's type on each
    sqlx::query(
        "update flags set enabled = ($1 = 1), updated_at = $2, updated_by = $3 where environment = $4 and key = $5",
    )
    .bind(i64::from(enabled))
    .bind(super::now_rfc3339())
    .bind(by)
    .bind(env.as_str())
    .bind(key)
    .execute(&mut *tx)
    .await?;
    super::audit::record_in(&mut tx, entry(before)).await?;
    tx.commit().await?;
    Ok(before)
}

/// A batch of demo rows written into an environment's target database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRecord {
    pub first_id: i64,
    pub last_id: i64,
    pub rows: i64,
    pub duration_ms: i64,
}

/// Remembers that demo data was generated into `env`.
pub async fn record_seed(db: &Database, env: Environment, seed: SeedRecord) -> Result<(), DbError> {
    sqlx::query(
        "insert into seed_events (environment, first_id, last_id, rows_inserted, duration_ms, created_at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(env.as_str())
    .bind(seed.first_id)
    .bind(seed.last_id)
    .bind(seed.rows)
    .bind(seed.duration_ms)
    .bind(super::now_rfc3339())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Whether demo data was ever generated into `env`.
pub async fn was_seeded(db: &Database, env: Environment) -> Result<bool, DbError> {
    let seeded: i64 = sqlx::query_scalar("select count(*) from seed_events where environment = $1")
        .bind(env.as_str())
        .fetch_one(db.pool())
        .await?;
    Ok(seeded > 0)
}

/// What the control database knew of the target an environment opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// The database it mirrored before.
    Known,
    /// The first target it records for the environment (a console from before identities
    /// included): what the mirror holds is taken to describe it.
    First,
    /// Another database than before (recreated, or the URL changed): the former one's mirrored
    /// runs, chunks, verifications and demo seeding were dropped, `runs` of them.
    Replaced { former: String, runs: i64 },
    /// Another environment's target holds the same identity: one database, or a copy of it.
    SharedWith(Environment),
}

/// Records `identity` as `env`'s target. When it differs from the one recorded, the mirror's
/// view of the former database goes (in one transaction): its runs would collide with the new
/// database's run ids, and its verification would open the flag gate for rows that are not there.
pub async fn adopt_target(db: &Database, env: Environment, identity: &str) -> Result<Adoption, DbError> {
    let rows = sqlx::query("select name, target_identity from environments").fetch_all(db.pool()).await?;
    let mut recorded = None;
    for row in &rows {
        let name: String = row.try_get("name")?;
        let id: Option<String> = row.try_get("target_identity")?;
        if name == env.as_str() {
            recorded = id;
        } else if id.as_deref() == Some(identity) {
            if let Ok(other) = Environment::parse(&name) {
                return Ok(Adoption::SharedWith(other));
            }
        }
    }
    let former = match recorded {
        Some(known) if known == identity => return Ok(Adoption::Known),
        Some(former) => Some(former),
        None => None,
    };
    let mut tx = db.begin_write().await?;
    let mut runs = 0;
    if former.is_some() {
        runs = sqlx::query_scalar::<_, i64>("select count(*) from runs where environment = $1")
            .bind(env.as_str())
            .fetch_one(&mut *tx)
            .await?;
        for table in ["run_chunks", "runs", "verifications", "seed_events"] {
            sqlx::query(&format!("delete from {table} where environment = $1"))
                .bind(env.as_str())
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query("update environments set target_identity = $1 where name = $2")
        .bind(identity)
        .bind(env.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(match former {
        Some(former) => Adoption::Replaced { former, runs },
        None => Adoption::First,
    })
}
