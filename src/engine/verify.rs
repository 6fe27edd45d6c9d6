//! Verification: per key range, the legacy rows by identified type against the subtype rows —
//! counts, and an exact comparison of the copied fields (a set difference both ways, which
//! names the ids that differ and is stronger than a checksum). The result goes into the
//! control database: a phase cannot count as verified without it.

use super::classify::{classified, NORMALISED_PACE};
use super::{now_ms, EngineError};
use crate::db::Database;
use crate::domain::environment::Environment;
use serde::Serialize;
use sqlx::Row;
use std::time::Instant;

/// Ids compared per range.
pub const RANGE_SPAN: i64 = 10_000;
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
    .await?;
    let rows = classified();
    let counts_sql = format!(
        "select coalesce(sum(case when verdict = 'school' then 1 else 0 end), 0) as legacy_school,
                coalesce(sum(case when verdict = 'self_study' then 1 else 0 end), 0) as legacy_self_study,
                (select count(*) from school_projects where project_id > $1 and project_id <= $2) as school_rows,
                (select count(*) from self_study_projects where project_id > $1 and project_id <= $2) as self_study_rows
         from {rows} c"
    );
    let school = "select id, school_name, grade";
    let school_rows = "select project_id, school_name, grade from school_projects where project_id > $1 and project_id <= $2";
    let self_study = format!("select id, {NORMALISED_PACE}, goal_date");
    let self_study_rows =
        "select project_id, pace, goal_date from self_study_projects where project_id > $1 and project_id <= $2";
    let diff_sql = format!(
        "select id from ({school} from {rows} c where verdict = 'school' except {school_rows}) a
         union select project_id from ({school_rows} except {school} from {rows} c where verdict = 'school') b
         union select id from ({self_study} from {rows} c where verdict = 'self_study' except {self_study_rows}) d
         union select project_id from ({self_study_rows} except {self_study} from {rows} c where verdict = 'self_study') e
         order by 1"
    );
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
        duration_ms: 0,
    };
    let mut from = 0;
    while from < high {
        let to = from.saturating_add(RANGE_SPAN).min(high);
        let counts = sqlx::query(&counts_sql).bind(from).bind(to).fetch_one(db.pool()).await?;
        let legacy_school: i64 = counts.try_get("legacy_school")?;
        let legacy_self_study: i64 = counts.try_get("legacy_self_study")?;
        let school_count: i64 = counts.try_get("school_rows")?;
        let self_study_count: i64 = counts.try_get("self_study_rows")?;
        let ids: Vec<i64> = sqlx::query_scalar(&diff_sql).bind(from).bind(to).fetch_all(db.pool()).await?;
        report.ranges += 1;
        report.legacy_school += legacy_school;
        report.legacy_self_study += legacy_self_study;
        report.school_rows += school_count;
        report.self_study_rows += self_study_count;
        if !ids.is_empty() || legacy_school != school_count || legacy_self_study != self_study_count {
            report.ok = false;
            let room = MAX_REPORTED_IDS.saturating_sub(report.mismatched_ids.len());
            report.mismatched_ids.extend(ids.iter().take(room));
            report.mismatches.push(RangeMismatch {
                from_id: from,
                to_id: to,
                legacy_school,
                school_rows: school_count,
                legacy_self_study,
                self_study_rows: self_study_count,
                ids: ids.into_iter().take(MAX_REPORTED_IDS).collect(),
            });
        }
        from = to;
        progress(from, high);
    }
    report.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    store(control, &report).await?;
    Ok(report)
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
