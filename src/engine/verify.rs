//! Verification: per key range, the legacy rows by identified type against the subtype rows —
//! counts, and an exact comparison of the copied fields (a set difference both ways, which
//! names the ids that differ and is stronger than a checksum). The result goes into the
//! control database: a phase cannot count as verified without it.

use super::keys;
use super::{now_ms, EngineError};
use crate::db::classify::{classified, normalised_pace as normalised_pace_sql};
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::span::{self, Span};
use crate::domain::study_type::{identify, normalised_pace, LegacyFields, StudyType};
use serde::Serialize;
use sqlx::Row;
use std::time::Instant;

/// How long verification waits before it checks a range that differed once more.
pub const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

impl RangeMismatch {
    fn differs(&self) -> bool {
        !self.ids.is_empty()
            || self.legacy_school != self.school_rows
            || self.legacy_self_study != self.self_study_rows
    }
}

/// Rows (of each table) compared per range.
pub const RANGE_ROWS: i64 = 10_000;
/// At most this many mismatching ids are reported (and stored).
pub const MAX_REPORTED_IDS: usize = 1000;

/// A key range whose subtype rows do not match its legacy rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RangeMismatch {
    pub from_id: i64,
    pub to_id: i64,
    pub legacy_school: i64,
    pub school_rows: i64,
    pub legacy_self_study: i64,
    pub self_study_rows: i64,
    pub ids: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub environment: Environment,
    pub ok: bool,
    pub ranges: i64,
    pub legacy_school: i64,
    pub legacy_self_study: i64,
    pub school_rows: i64,
    pub self_study_rows: i64,
    pub mismatches: Vec<RangeMismatch>,
    pub mismatched_ids: Vec<i64>,
    /// Legacy rows the target refused to take (dead letters `refused: …`, without a subtype
    /// row): known and listed with the dead letters, not drift.
    pub refused: i64,
    pub duration_ms: i64,
}

/// Compares every range and stores the result in the control database.
pub async fn verify(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    progress: &mut (dyn FnMut(i64, i64) + Send),
) -> Result<VerifyReport, EngineError> {
    let started = Instant::now();
    let high: i64 = sqlx::query_scalar(
        "select cast(coalesce(max(m), 0) as bigint) from (
            select max(id) as m from projects
            union all select max(project_id) from school_projects
            union all select max(project_id) from self_study_projects) maxima",
    )
    .fetch_one(db.pool())
    .await
    .map(span::end)?;
    let rows = classified();
    let counts_sql = format!(
        "select coalesce(sum(case when verdict = 'school' then 1 else 0 end), 0) as legacy_school,
                coalesce(sum(case when verdict = 'self_study' then 1 else 0 end), 0) as legacy_self_study,
                (select count(*) from school_projects where project_id >= $1 and project_id <= $2) as school_rows,
                (select count(*) from self_study_projects where project_id >= $1 and project_id <= $2) as self_study_rows
         from {rows} c"
    );
    // every copied column
    let school = "select id, school_name, grade, created_at";
    let school_rows = "select project_id, school_name, grade, created_at from school_projects
        where project_id >= $1 and project_id <= $2";
    let self_study = format!("select id, {}, goal_date, created_at", normalised_pace_sql());
    let self_study_rows = "select project_id, pace, goal_date, created_at from self_study_projects
        where project_id >= $1 and project_id <= $2";
    let diff_sql = format!(
        "select id from ({school} from {rows} c where verdict = 'school' except {school_rows}) a
         union select project_id from ({school_rows} except {school} from {rows} c where verdict = 'school') b
         union select id from ({self_study} from {rows} c where verdict = 'self_study' except {self_study_rows}) d
         union select project_id from ({self_study_rows} except {self_study} from {rows} c where verdict = 'self_study') e
         order by 1"
    );
    // rows the target refused: identified, but in no subtype table, by the target's own rule
    let refused_sql = format!(
        "select c.id, c.verdict from {rows} c
         where exists (select 1 from sti_backfill_dead_letters d where d.project_id = c.id and d.reason like '{}%')
           and not exists (select 1 from school_projects s where s.project_id = c.id)
           and not exists (select 1 from self_study_projects t where t.project_id = c.id)",
        super::backfill::REFUSED_PREFIX
    );
    let check = |from: i64, to: i64| {
        let (counts_sql, diff_sql, refused_sql) = (counts_sql.clone(), diff_sql.clone(), refused_sql.clone());
        async move {
            let span = Span::after(from, to);
            let counts =
                sqlx::query(&counts_sql).bind(span.first).bind(span.last).fetch_one(db.pool()).await?;
            let mut ids: Vec<i64> =
                sqlx::query_scalar(&diff_sql).bind(span.first).bind(span.last).fetch_all(db.pool()).await?;
            for id in oracle_disagrees(db, span).await? {
                if let Err(at) = ids.binary_search(&id) {
                    ids.insert(at, id);
                }
            }
            let refused: Vec<(i64, String)> =
                sqlx::query_as(&refused_sql).bind(span.first).bind(span.last).fetch_all(db.pool()).await?;
            ids.retain(|id| !refused.iter().any(|(r, _)| r == id));
            let of = |verdict: &str| refused.iter().filter(|(_, v)| v == verdict).count() as i64;
            Ok::<_, EngineError>((
                RangeMismatch {
                    from_id: from,
                    to_id: to,
                    legacy_school: counts.try_get::<i64, _>("legacy_school")? - of("school"),
                    school_rows: counts.try_get("school_rows")?,
                    legacy_self_study: counts.try_get::<i64, _>("legacy_self_study")? - of("self_study"),
                    self_study_rows: counts.try_get("self_study_rows")?,
                    ids,
                },
                refused.len() as i64,
            ))
        }
    };
    let mut report = VerifyReport {
        environment: env,
        ok: true,
        ranges: 0,
        legacy_school: 0,
        legacy_self_study: 0,
        school_rows: 0,
        self_study_rows: 0,
        mismatches: Vec::new(),
        mismatched_ids: Vec::new(),
        refused: 0,
        duration_ms: 0,
    };
    let walked = [keys::LEGACY, keys::SCHOOL, keys::SELF_STUDY];
    let mut from = keys::start_before(db, &walked).await?;
    let mut found = Vec::new();
    while from < high {
        let to = keys::chunk_end(db, &walked, from, RANGE_ROWS, high).await?;
        let (range, refused) = check(from, to).await?;
        report.refused += refused;
        report.ranges += 1;
        report.legacy_school += range.legacy_school;
        report.legacy_self_study += range.legacy_self_study;
        report.school_rows += range.school_rows;
        report.self_study_rows += range.self_study_rows;
        if range.differs() {
            found.push(range);
        }
        from = to;
        progress(from, high);
    }
    // a write racing the check (committed between reading a range's legacy rows and its
    // subtype rows, or kept in step by the change capture a moment later) is no drift: every
    // range found different is checked once more after the writes in flight could commit, and
    // only what still differs is reported
    if !found.is_empty() {
        tokio::time::sleep(RECHECK_AFTER).await;
    }
    for first in found {
        let (again, _) = check(first.from_id, first.to_id).await?;
        if !again.differs() {
            tracing::info!(
                from = first.from_id,
                to = first.to_id,
                "a range that differed agrees on a second look"
            );
            continue;
        }
        report.ok = false;
        let room = MAX_REPORTED_IDS.saturating_sub(report.mismatched_ids.len());
        report.mismatched_ids.extend(again.ids.iter().take(room));
        report
            .mismatches
            .push(RangeMismatch { ids: again.ids.iter().copied().take(MAX_REPORTED_IDS).collect(), ..again });
    }
    report.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    store(control, &report).await?;
    Ok(report)
}

/// Legacy rows per range that the Rust rule checks on its own: the first and the last few.
pub const SAMPLE_ROWS: i64 = 8;

/// A sampled legacy row and what the subtype tables hold for it (dates and times as text).
#[derive(Clone, Debug, Default, PartialEq)]
struct Sampled {
    id: i64,
    project_type: Option<String>,
    school_name: Option<String>,
    grade: Option<i64>,
    pace: Option<String>,
    goal_date: Option<String>,
    created_at: String,
    /// `school_projects`' school name, grade and created_at, when it has the row.
    school: Option<(String, Option<i64>, String)>,
    /// `self_study_projects`' pace, goal date and created_at, when it has the row.
    self_study: Option<(Option<String>, Option<String>, String)>,
}

/// Whether the subtype tables hold what `domain::study_type::identify` — not the SQL twin that
/// both the copy and the comparison above use — says a legacy row becomes.
fn agrees(row: &Sampled) -> bool {
    let fields = LegacyFields {
        project_type: row.project_type.as_deref(),
        school_name: row.school_name.as_deref(),
        grade: row.grade,
        pace: row.pace.as_deref(),
    };
    match identify(&fields) {
        Ok(StudyType::School) => {
            row.self_study.is_none()
                && row.school.as_ref().is_some_and(|(name, grade, created)| {
                    Some(name) == row.school_name.as_ref()
                        && *grade == row.grade
                        && *created == row.created_at
                })
        }
        Ok(StudyType::SelfStudy) => {
            row.school.is_none()
                && row.self_study.as_ref().is_some_and(|(pace, goal, created)| {
                    pace.as_deref() == normalised_pace(row.pace.as_deref())
                        && *goal == row.goal_date
                        && *created == row.created_at
                })
        }
        Err(_) => row.school.is_none() && row.self_study.is_none(),
    }
}

/// The sampled ids of `span` whose subtype rows the Rust rule disagrees with.
async fn oracle_disagrees(db: &Database, span: Span) -> Result<Vec<i64>, EngineError> {
    let sample = |order: &str| {
        format!(
            "select p.id, p.project_type, p.school_name, cast(p.grade as bigint) as grade, p.pace,
                    cast(p.goal_date as text) as goal_date, cast(p.created_at as text) as created_at,
                    case when s.project_id is null then 0 else 1 end as in_school, s.school_name as s_school_name,
                    cast(s.grade as bigint) as s_grade, cast(s.created_at as text) as s_created_at,
                    case when t.project_id is null then 0 else 1 end as in_self_study, t.pace as t_pace,
                    cast(t.goal_date as text) as t_goal_date, cast(t.created_at as text) as t_created_at
             from (select id, project_type, school_name, grade, pace, goal_date, created_at from projects
                   where id >= $1 and id <= $2 order by id {order} limit $3) p
             left join school_projects s on s.project_id = p.id
             left join self_study_projects t on t.project_id = p.id"
        )
    };
    let mut disagree = Vec::new();
    for order in ["asc", "desc"] {
        let rows = sqlx::query(&sample(order))
            .bind(span.first)
            .bind(span.last)
            .bind(SAMPLE_ROWS)
            .fetch_all(db.pool())
            .await?;
        for row in rows {
            let in_school: i64 = row.try_get("in_school")?;
            let in_self_study: i64 = row.try_get("in_self_study")?;
            let sampled = Sampled {
                id: row.try_get("id")?,
                project_type: row.try_get("project_type")?,
                school_name: row.try_get("school_name")?,
                grade: row.try_get("grade")?,
                pace: row.try_get("pace")?,
                goal_date: row.try_get("goal_date")?,
                created_at: row.try_get("created_at")?,
                school: match in_school {
                    0 => None,
                    _ => Some((
                        row.try_get("s_school_name")?,
                        row.try_get("s_grade")?,
                        row.try_get("s_created_at")?,
                    )),
                },
                self_study: match in_self_study {
                    0 => None,
                    _ => Some((
                        row.try_get("t_pace")?,
                        row.try_get("t_goal_date")?,
                        row.try_get("t_created_at")?,
                    )),
                },
            };
            if !agrees(&sampled) && !disagree.contains(&sampled.id) {
                disagree.push(sampled.id);
            }
        }
    }
    disagree.sort_unstable();
    Ok(disagree)
}

async fn store(control: Option<&Database>, report: &VerifyReport) -> Result<(), EngineError> {
    let Some(control) = control else { return Ok(()) };
    let ids = serde_json::to_string(&report.mismatched_ids).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "insert into verifications (environment, ok, ranges, mismatched_ranges, legacy_school,
            legacy_self_study, school_rows, self_study_rows, mismatched_ids, duration_ms, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(report.environment.as_str())
    .bind(report.ok)
    .bind(report.ranges)
    .bind(report.mismatches.len() as i64)
    .bind(report.legacy_school)
    .bind(report.legacy_self_study)
    .bind(report.school_rows)
    .bind(report.self_study_rows)
    .bind(ids)
    .bind(report.duration_ms)
    .bind(now_ms())
    .execute(control.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn school_row() -> Sampled {
        Sampled {
            id: 7,
            project_type: Some("School".into()),
            school_name: Some("Hill High".into()),
            grade: Some(9),
            created_at: "2024-01-01".into(),
            school: Some(("Hill High".into(), Some(9), "2024-01-01".into())),
            ..Sampled::default()
        }
    }

    #[test]
    fn the_oracle_accepts_a_faithful_copy_and_names_every_difference() {
        assert!(agrees(&school_row()));
        let mut other_grade = school_row();
        other_grade.school = Some(("Hill High".into(), Some(8), "2024-01-01".into()));
        assert!(!agrees(&other_grade));
        let mut other_time = school_row();
        other_time.school = Some(("Hill High".into(), Some(9), "2023-12-31".into()));
        assert!(!agrees(&other_time), "created_at is a copied column");
        let mut in_both = school_row();
        in_both.self_study = Some((None, None, "2024-01-01".into()));
        assert!(!agrees(&in_both));
        let mut missing = school_row();
        missing.school = None;
        assert!(!agrees(&missing));
    }

    #[test]
    fn the_oracle_wants_a_rejected_row_in_neither_table_and_a_pace_normalised() {
        let mut dirty = school_row();
        dirty.school_name = None;
        assert!(!agrees(&dirty), "a school row without a school name is copied");
        dirty.school = None;
        assert!(agrees(&dirty));
        let self_study = Sampled {
            project_type: Some("self-study".into()),
            pace: Some(" Relaxed ".into()),
            created_at: "t".into(),
            self_study: Some((Some("relaxed".into()), None, "t".into())),
            ..Sampled::default()
        };
        assert!(agrees(&self_study));
    }
}
