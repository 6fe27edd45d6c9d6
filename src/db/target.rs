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
