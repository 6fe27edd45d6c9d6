//! Read queries on an environment's target database.

use super::pool::{Database, DbError};
use crate::domain::overview::TableCounts;
use sqlx::Row;

/// Row counts of the legacy table and both subtype tables, read in one statement.
pub async fn table_counts(db: &Database) -> Result<TableCounts, DbError> {
    let row = sqlx::query(
        "select (select count(*) from projects) as legacy,
                (select count(*) from school_projects) as school,
                (select count(*) from self_study_projects) as self_study",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(TableCounts {
        legacy: row.try_get("legacy")?,
        school: row.try_get("school")?,
        self_study: row.try_get("self_study")?,
    })
}

/// The highest legacy id, if there are rows.
pub async fn max_project_id(db: &Database) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query_scalar("select max(id) from projects").fetch_one(db.pool()).await?)
}

/// Which database this is, whatever URL names it: the identity it keeps in itself, made the
/// first time the console opens it (one row; two consoles making it at once keep the first).
pub async fn identity(db: &Database) -> Result<String, DbError> {
    if let Some(id) = read_identity(db).await? {
        return Ok(id);
    }
    let fresh = super::random_hex(16);
    sqlx::query(
        "insert into sti_target_identity (singleton, id, created_at) values (1, $1, $2)
         on conflict (singleton) do nothing",
    )
    .bind(&fresh)
    .bind(super::now_ms())
    .execute(db.pool())
    .await?;
    read_identity(db).await?.ok_or(DbError::Query(sqlx::Error::RowNotFound))
}

async fn read_identity(db: &Database) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar("select id from sti_target_identity where singleton = 1")
        .fetch_optional(db.pool())
        .await?)
}
