//! Rejected legacy rows, as backfill runs recorded them in the target database: one per
//! project id however many runs rejected it (with the runs that did), paged and filtered for the
//! console, and whole for the CSV export with the legacy row's fields beside it.

use super::EngineError;
use crate::db::Database;
use crate::domain::format::rfc3339_ms;
use crate::domain::live::{DeadLetter, DeadLetterPage};
use sqlx::Row;

/// Rows per page in the console.
pub const PER_PAGE: i64 = 15;

/// The filter both the page and the export take: `reason` and `run_id` when given. A project id
/// matches when one of its rejections does.
const FILTER: &str = "(cast($1 as text) is null or reason = cast($1 as text))
    and (cast($2 as bigint) is null or run_id = cast($2 as bigint))";

/// The legacy row's fields the export shows, as text on both dialects.
const LEGACY: [&str; 7] = ["title", "owner_id", "project_type", "school_name", "grade", "pace", "goal_date"];

/// One rejection: `(project_id, reason, run_id, recorded_at)`.
type Rejection = (i64, String, i64, i64);

fn rejection(row: &sqlx::any::AnyRow) -> Result<Rejection, sqlx::Error> {
    Ok((
        row.try_get("project_id")?,
        row.try_get("reason")?,
        row.try_get("run_id")?,
        row.try_get("recorded_at")?,
    ))
}

/// Folds rejections ordered by project id and time into one row per project id; its reason is
/// the latest one.
fn per_project(rejections: impl IntoIterator<Item = Rejection>) -> Vec<DeadLetter> {
    let mut out: Vec<DeadLetter> = Vec::new();
    for (project_id, reason, run_id, at) in rejections {
        match out.last_mut() {
            Some(last) if last.project_id == project_id => {
                if !last.runs.contains(&run_id) {
                    last.runs.push(run_id);
                }
                last.reason = reason;
                last.last_seen = at;
            }
            _ => {
                out.push(DeadLetter { project_id, reason, runs: vec![run_id], first_seen: at, last_seen: at })
            }
        }
    }
    out
}

/// Page `page` (from 1) of the rejected project ids, in id order.
pub async fn page(
    target: &Database,
    reason: Option<&str>,
    run_id: Option<i64>,
    page: i64,
) -> Result<DeadLetterPage, EngineError> {
    let page = page.max(1);
    let total: i64 = sqlx::query_scalar(&format!(
        "select count(distinct project_id) from sti_backfill_dead_letters where {FILTER}"
    ))
    .bind(reason)
    .bind(run_id)
    .fetch_one(target.pool())
    .await?;
    let ids: Vec<i64> = sqlx::query_scalar(&format!(
        "select project_id from sti_backfill_dead_letters where {FILTER}
         group by project_id order by project_id limit $3 offset $4"
    ))
    .bind(reason)
    .bind(run_id)
    .bind(PER_PAGE)
    .bind((page - 1).saturating_mul(PER_PAGE))
    .fetch_all(target.pool())
    .await?;
    let rows = match (ids.first(), ids.last()) {
        (Some(first), Some(last)) => {
            // every rejection of the page's ids, whichever run: the filter chose the ids
            let rows = sqlx::query(
                "select project_id, reason, run_id, recorded_at from sti_backfill_dead_letters
                 where project_id >= $1 and project_id <= $2 order by project_id, recorded_at, run_id",
            )
            .bind(first)
            .bind(last)
            .fetch_all(target.pool())
            .await?;
            let rejections = rows.iter().map(rejection).collect::<Result<Vec<_>, _>>()?;
            per_project(rejections.into_iter().filter(|r| ids.binary_search(&r.0).is_ok()))
        }
        _ => Vec::new(),
    };
    Ok(DeadLetterPage {
        rows,
        total,
        page,
        per_page: PER_PAGE,
        reasons: reasons(target).await?,
        runs: runs(target).await?,
    })
}

/// Rejected project ids per reason, most frequent first.
pub async fn reasons(target: &Database) -> Result<Vec<(String, i64)>, EngineError> {
    let rows = sqlx::query(
        "select reason, count(distinct project_id) as n from sti_backfill_dead_letters
         group by reason order by n desc, reason",
    )
    .fetch_all(target.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("reason")?, row.try_get("n")?)))
        .collect::<Result<_, _>>()?)
}

/// Rejected project ids per run, newest run first.
async fn runs(target: &Database) -> Result<Vec<(i64, i64)>, EngineError> {
    let rows = sqlx::query(
        "select run_id, count(distinct project_id) as n from sti_backfill_dead_letters
         group by run_id order by run_id desc",
    )
    .fetch_all(target.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("run_id")?, row.try_get("n")?)))
        .collect::<Result<_, _>>()?)
}

/// Every matching project id as CSV, header first: `project_id,reason,runs,first_seen,last_seen`
/// (times in RFC 3339, UTC), then the legacy row as it is now (`legacy_row` says `deleted` when
/// it is gone) — what someone who signs "rejected rows reviewed and owned" reads.
pub async fn csv(
    target: &Database,
    reason: Option<&str>,
    run_id: Option<i64>,
) -> Result<String, EngineError> {
    let legacy: Vec<String> = LEGACY.iter().map(|c| format!("cast(p.{c} as text) as {c}")).collect();
    let rows = sqlx::query(&format!(
        "select d.project_id, d.reason, d.run_id, d.recorded_at, p.id as legacy_id, {}
         from sti_backfill_dead_letters d left join projects p on p.id = d.project_id
         where d.project_id in (select project_id from sti_backfill_dead_letters where {FILTER})
         order by d.project_id, d.recorded_at, d.run_id",
        legacy.join(", ")
    ))
    .bind(reason)
    .bind(run_id)
    .fetch_all(target.pool())
    .await?;
    let mut fields = std::collections::HashMap::new();
    let mut rejections = Vec::with_capacity(rows.len());
    for row in &rows {
        let r = rejection(row)?;
        if let std::collections::hash_map::Entry::Vacant(slot) = fields.entry(r.0) {
            let present = row.try_get::<Option<i64>, _>("legacy_id")?.is_some();
            let values = LEGACY
                .iter()
                .map(|c| row.try_get::<Option<String>, _>(*c).map(|v| csv_field(&v.unwrap_or_default())))
                .collect::<Result<Vec<_>, _>>()?;
            slot.insert((present, values));
        }
        rejections.push(r);
    }
    let mut out = format!("project_id,reason,runs,first_seen,last_seen,legacy_row,{}\n", LEGACY.join(","));
    for letter in per_project(rejections) {
        let (present, values) = fields.remove(&letter.project_id).unwrap_or_default();
        let runs: Vec<String> = letter.runs.iter().map(i64::to_string).collect();
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            letter.project_id,
            csv_field(&letter.reason),
            runs.join(" "),
            rfc3339_ms(letter.first_seen),
            rfc3339_ms(letter.last_seen),
            if present { "present" } else { "deleted" },
            values.join(",")
        ));
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
    use super::*;

    #[test]
    fn a_row_rejected_by_several_runs_is_one_row() {
        let folded = per_project([
            (7, "missing_school".to_owned(), 1, 100),
            (7, "missing_school".to_owned(), 2, 200),
            (7, "bad_grade".to_owned(), 3, 300),
            (9, "missing_pace".to_owned(), 2, 250),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!((folded[0].runs.clone(), folded[0].reason.as_str()), (vec![1, 2, 3], "bad_grade"));
        assert_eq!((folded[0].first_seen, folded[0].last_seen), (100, 300));
        assert_eq!(folded[0].runs_text(), "#1, #2, #3");
        assert_eq!(folded[1].runs, vec![2]);
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(super::csv_field("missing_school"), "missing_school");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::csv_field("=1+1"), "'=1+1");
        assert_eq!(super::csv_field("a=1"), "a=1");
    }
}
