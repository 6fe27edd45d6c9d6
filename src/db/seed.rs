//! Demo data: realistic legacy `projects` rows, about 0.5% of them dirty on purpose (PRODUCT §2).
//!
//! Rows are generated inside the database by one set-based `insert … select` per batch, so a
//! million rows take seconds; every value is a fixed function of the row id, so the data is the
//! same on SQLite and PostgreSQL and the same on every machine.

use super::control::SeedRecord;
use super::pool::{Database, DbError, Dialect};
use super::target;
use std::time::Instant;

/// Rows generated per transaction: large enough to be fast, small enough to report progress.
const BATCH_ROWS: i64 = 100_000;

/// Why seeding did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the environment already has {rows} legacy rows: pass --append to add more")]
    NotEmpty { rows: i64 },
    #[error("the number of rows must be between 1 and {max}, not {given}")]
    BadRowCount { given: i64, max: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for SeedError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// Whether seeding may add rows to a table that already has some.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedMode {
    /// Only into an empty `projects` table.
    Fresh,
    /// After the highest existing id.
    Append,
}

/// The most rows one seed call generates (a typo guard, not a limit of the generator).
pub const MAX_ROWS: i64 = 50_000_000;

/// Generates `rows` legacy rows; calls `progress(done, total)` after every committed batch.
pub async fn seed(
    db: &Database,
    rows: i64,
    mode: SeedMode,
    mut progress: impl FnMut(i64, i64),
) -> Result<SeedRecord, SeedError> {
    if !(1..=MAX_ROWS).contains(&rows) {
        return Err(SeedError::BadRowCount { given: rows, max: MAX_ROWS });
    }
    let last_existing = target::max_project_id(db).await?;
    if let (SeedMode::Fresh, Some(_)) = (mode, last_existing) {
        let existing = target::table_counts(db).await?.legacy;
        return Err(SeedError::NotEmpty { rows: existing });
    }
    let first_id = last_existing.unwrap_or(0) + 1;
    let last_id = first_id + rows - 1;
    let sql = insert_sql(db.dialect());
    let started = Instant::now();
    let mut from = first_id;
    while from <= last_id {
        let to = (from + BATCH_ROWS - 1).min(last_id);
        let mut tx = db.begin_write().await?;
        sqlx::query(&sql).bind(from).bind(to).execute(&mut *tx).await?;
        tx.commit().await?;
        progress(to - first_id + 1, rows);
        from = to + 1;
    }
    if db.dialect() == Dialect::Postgres {
        // fresh statistics, so the planner knows the table is no longer empty
        sqlx::query("analyze projects").execute(db.pool()).await?;
    }
    Ok(SeedRecord {
        first_id,
        last_id,
        rows,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    })
}

const SUBJECTS: [&str; 24] = [
    "Algebra",
    "Photosynthesis",
    "the French Revolution",
    "Climate Change",
    "Spanish Vocabulary",
    "Poetry",
    "Organic Chemistry",
    "Robotics",
    "World War II",
    "Shakespeare",
    "Statistics",
    "Human Anatomy",
    "Creative Writing",
    "Geometry",
    "Music Theory",
    "Ancient Rome",
    "Python Programming",
    "Microeconomics",
    "Astronomy",
    "German Grammar",
    "Ecology",
    "Philosophy",
    "Calculus",
    "Art History",
];

/// (prefix, suffix) around a subject: school work.
const SCHOOL_FORMATS: [(&str, &str); 8] = [
    ("Class project: ", ""),
    ("", " report"),
    ("", " presentation"),
    ("Group work on ", ""),
    ("", " homework"),
    ("Essay on ", ""),
    ("", " exam preparation"),
    ("", " lab notes"),
];

/// (prefix, suffix) around a subject: self study.
const SELF_STUDY_FORMATS: [(&str, &str); 8] = [
    ("Learning ", ""),
    ("", " in 30 days"),
    ("My ", " notebook"),
    ("", " deep dive"),
    ("Exploring ", ""),
    ("", " from scratch"),
    ("Daily ", " practice"),
    ("", " revision plan"),
];

const SCHOOLS: [&str; 24] = [
    "Hillside High School",
    "Riverside Academy",
    "St. Mary's College",
    "Lincoln Middle School",
    "Oakwood Grammar School",
    "Northgate Secondary",
    "Maple Leaf International School",
    "Kingsbridge Comprehensive",
    "Westfield Gymnasium",
    "Lakeside Community School",
    "Greenfield Primary",
    "Harbour View High",
    "Elmwood Collegiate",
    "Summit Preparatory",
    "Valley Forge School",
    "Queen Anne's School",
    "Bayside Lyceum",
    "Cedar Grove Academy",
    "Pinecrest High School",
    "Fairview Sixth Form",
    "Meadowbrook School",
    "Ashford College",
    "Brookline Middle School",
    "Southbank International",
];

/// The `insert … select` that generates ids `$1..=$2`.
///
/// `d` marks the dirty rows: 5 in every 1000 consecutive ids (7919 is prime to 1000), one of each
/// reason a row cannot be identified.
fn insert_sql(dialect: Dialect) -> String {
    let subject = pick("(n * 17) % 24", &SUBJECTS.map(literal));
    let school = pick("(n / 3) % 24", &SCHOOLS.map(literal));
    // the format varies with n / 24 so that every subject meets every format
    let school_title = pick("(n / 24) % 8", &SCHOOL_FORMATS.map(|(p, s)| around(p, &subject, s)));
    let self_title = pick("(n / 24) % 8", &SELF_STUDY_FORMATS.map(|(p, s)| around(p, &subject, s)));
    let pace = "case (n * 19) % 3 when 0 then 'relaxed' when 1 then 'regular' else 'intensive' end";
    let (series, created, updated, goal_date) = match dialect {
        Dialect::Sqlite => (
            "with recursive s(n) as (select $1 union all select n + 1 from s where n < $2)",
            "strftime('%Y-%m-%dT%H:%M:%SZ', 1672531200 + n * 90, 'unixepoch')",
            "strftime('%Y-%m-%dT%H:%M:%SZ', 1672531200 + n * 90 + (n * 41) % 2592000, 'unixepoch')",
            "date(1798761600 + ((n * 23) % 365) * 86400, 'unixepoch')",
        ),
        Dialect::Postgres => (
            "with s(n) as (select generate_series($1::bigint, $2::bigint))",
            "to_timestamp(1672531200 + n * 90)",
            "to_timestamp(1672531200 + n * 90 + (n * 41) % 2592000)",
            "date '2027-01-01' + ((n * 23) % 365)::int",
        ),
    };
    format!(
        "{series},
        k as (select n, (n * 7919) % 1000 as d, (n * 104729) % 100 < 62 as school, (n * 31) % 20 as v from s)
        insert into projects (id, title, owner_id, project_type, school_name, grade, pace, goal_date, created_at, updated_at)
        select
            n,
            case when school and d not in (0, 1, 4) then {school_title} else {self_title} end,
            (n * 2749) % 4000 + 1,
            case
                when d = 0 then null
                when d = 1 then ''
                when d = 2 then 'school'
                when d = 3 then 'School'
                when d = 4 then 'self-study'
                when school then case when v < 12 then 'school' when v < 16 then 'School' when v < 18 then '' else null end
                else case when v < 11 then 'self_study' when v < 17 then 'self-study' when v < 19 then '' else null end
            end,
            case when d in (1, 3, 4) then null when d in (0, 2) or school then {school} else null end,
            case
                when d = 2 then case when n % 2 = 0 then 14 else 0 end
                when school and d > 4 and (n * 3) % 10 <> 0 then (n * 11) % 13 + 1
                else null
            end,
            case when d = 4 then 'turbo' when d = 0 or (not school and d > 4) then {pace} else null end,
            case when d in (0, 4) or (not school and d > 4) then {goal_date} else null end,
            {created},
            {updated}
        from k"
    )
}

/// `case <expr> when 0 then a when 1 then b … end`
fn pick(expr: &str, choices: &[String]) -> String {
    let arms: String =
        choices.iter().enumerate().map(|(i, choice)| format!(" when {i} then {choice}")).collect();
    format!("case {expr}{arms} end")
}

fn around(prefix: &str, subject: &str, suffix: &str) -> String {
    format!("{} || {subject} || {}", literal(prefix), literal(suffix))
}

/// A SQL string literal of one of the constants above.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_apostrophe_in_a_name_is_escaped() {
        assert_eq!(literal("St. Mary's College"), "'St. Mary''s College'");
    }

    #[test]
    fn the_generator_binds_exactly_the_two_id_bounds() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let sql = insert_sql(dialect);
            assert!(sql.contains("$1") && sql.contains("$2") && !sql.contains("$3"));
        }
    }
}
