//! Rejected legacy rows, as backfill runs recorded them in the target database: paged and
//! filtered for the console, and whole for the CSV export.

use super::EngineError;
use crate::db::Database;
use crate::domain::live::{DeadLetter, DeadLetterPage};
use sqlx::Row;

/// Rows per page in the console.
pub const PER_PAGE: i64 = 15;

/// The filter both the page and the export take: `reason` and `run_id` when given.
const FILTER: &str = "(cast($1 as text) is null or reason = cast($1 as text))
    and (cast($2 as bigint) is null or run_id = cast($2 as bigint))";

fn from_row(row: &sqlx::any::AnyRow) -> Result<DeadLetter, sqlx::Error> {
    Ok(DeadLetter {
        project_id: row.try_get("project_id")?,
        reason: row.try_get("reason")?,
        run_id: row.try_get("run_id")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// Page `page` (from 1) of the rejected rows, by project id.
pub async fn page(
    target: &Database,
    reason: Option<&str>,
    run_id: Option<i64>,
    page: i64,
) -> Result<DeadLetterPage, EngineError> {
    let page = page.max(1);
    let total: i64 =
        sqlx::query_scalar(&format!("select count(*) from sti_backfill_dead_letters where {FILTER}"))
            .bind(reason)
            .bind(run_id)
            .fetch_one(target.pool())
            .await?;
    let rows = sqlx::query(&format!(
        "select project_id, reason, run_id, recorded_at from sti_backfill_dead_letters where {FILTER}
         order by project_id, run_id limit $3 offset $4"
    ))
    .bind(reason)
    .bind(run_id)
    .bind(PER_PAGE)
    .bind((page - 1).saturating_mul(PER_PAGE))
    .fetch_all(target.pool())
    .await?;
    Ok(DeadLetterPage {
        rows: rows.iter().map(from_row).collect::<Result<_, _>>()?,
        total,
        page,
        per_page: PER_PAGE,
        reasons: reasons(target).await?,
    })
}

/// Rejected rows per reason, most frequent first.
pub async fn reasons(target: &Database) -> Result<Vec<(String, i64)>, EngineError> {
    let rows = sqlx::query(
        "select reason, count(*) as n from sti_backfill_dead_letters group by reason order by n desc, reason",
    )
    .fetch_all(target.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("reason")?, row.try_get("n")?)))
        .collect::<Result<_, _>>()?)
}

/// Every matching row as CSV (`project_id,reason,run_id,recorded_at`), header first.
pub async fn csv(
    target: &Database,
    reason: Option<&str>,
    run_id: Option<i64>,
) -> Result<String, EngineError> {
    let rows = sqlx::query(&format!(
        "select project_id, reason, run_id, recorded_at from sti_backfill_dead_letters where {FILTER}
         order by project_id, run_id"
    ))
    .bind(reason)
    .bind(run_id)
    .fetch_all(target.pool())
    .await?;
    let mut out = String::from("project_id,reason,run_id,recorded_at\n");
    for row in &rows {
        let letter = from_row(row)?;
        let reason = csv_field(&letter.reason);
        out.push_str(&format!("{},{reason},{},{}\n", letter.project_id, letter.run_id, letter.recorded_at));
    }
    Ok(out)
}

/// A text CSV field: quoted when it must be (RFC 4180), and made inert for spreadsheets: a field
/// starting with `=`, `+`, `-`, `@`, TAB or CR would be read as a formula (OWASP's CSV
/// injection), so it gets a leading `'`. Numbers the exports write themselves do not go
/// through here.
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(super::csv_field("missing_school"), "missing_school");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::csv_field("=1+1"), "'=1+1");
        assert_eq!(super::csv_field("a=1"), "a=1");
    }
}
