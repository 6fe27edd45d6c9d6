//! The projects API's reads and writes on an environment's target database, in legacy mode
//! (the legacy columns only) and STI mode (through the subtype tables, writing both in one
//! transaction). What a row looks like in either mode is decided in `domain::projects`.

use super::classify::classified;
use super::pool::{Database, Dialect};
use crate::domain::projects::{LegacyRow, NewProject, Project, SubtypeRow};
use crate::domain::study_type::StudyType;
use sqlx::any::AnyRow;
use sqlx::Row;

/// How the application reads and writes: `ENABLE_STI` off or on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Legacy,
    Sti,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Legacy => "legacy",
            Mode::Sti => "sti",
        }
    }
}

/// `select … from projects p …`: in legacy mode the legacy columns only; in STI mode with the
/// subtype rows joined. Times and dates are read as text, in one format on both engines.
fn select(dialect: Dialect, mode: Mode) -> String {
    let (created, updated, goal, s_goal) = match dialect {
        Dialect::Sqlite => ("p.created_at", "p.updated_at", "p.goal_date", "ss.goal_date"),
        Dialect::Postgres => (
            r#"to_char(p.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"#,
            r#"to_char(p.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"#,
            "to_char(p.goal_date, 'YYYY-MM-DD')",
            "to_char(ss.goal_date, 'YYYY-MM-DD')",
        ),
    };
    let legacy = format!(
        "p.id, p.title, p.owner_id, p.project_type, p.school_name, cast(p.grade as bigint) as grade, p.pace,
         {goal} as goal_date, {created} as created_at, {updated} as updated_at"
    );
    match mode {
        Mode::Legacy => format!("select {legacy} from projects p"),
        Mode::Sti => format!(
            "select {legacy},
                 s.project_id as s_id, s.school_name as s_school_name, cast(s.grade as bigint) as s_grade,
                 ss.project_id as ss_id, ss.pace as ss_pace, {s_goal} as ss_goal_date
             from projects p
             left join school_projects s on s.project_id = p.id
             left join self_study_projects ss on ss.project_id = p.id"
        ),
    }
}

fn project(row: &AnyRow, mode: Mode) -> Result<Project, sqlx::Error> {
    let legacy = LegacyRow {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        owner_id: row.try_get("owner_id")?,
        project_type: row.try_get("project_type")?,
        school_name: row.try_get("school_name")?,
        grade: row.try_get("grade")?,
        pace: row.try_get("pace")?,
        goal_date: row.try_get("goal_date")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    };
    if mode == Mode::Legacy {
        return Ok(Project::from_legacy(legacy));
    }
    let subtype = if row.try_get::<Option<i64>, _>("s_id")?.is_some() {
        Some(SubtypeRow::School {
            school_name: row.try_get("s_school_name")?,
            grade: row.try_get("s_grade")?,
        })
    } else if row.try_get::<Option<i64>, _>("ss_id")?.is_some() {
        Some(SubtypeRow::SelfStudy { pace: row.try_get("ss_pace")?, goal_date: row.try_get("ss_goal_date")? })
    } else {
        None
    };
    Ok(Project::from_sti(legacy, subtype))
}

/// One project, if it exists.
pub async fn get(db: &Database, mode: Mode, id: i64) -> Result<Option<Project>, sqlx::Error> {
    let sql = format!("{} where p.id = $1", select(db.dialect(), mode));
    let row = sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await?;
    row.map(|row| project(&row, mode)).transpose()
}

/// Up to `limit` projects after skipping `offset`, by id, optionally of one study type only: in
/// legacy mode as identified from the legacy columns, in STI mode by subtype row (and, for a row
/// without one, as identified) — the same rows either way.
pub async fn list(
    db: &Database,
    mode: Mode,
    study_type: Option<StudyType>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Project>, sqlx::Error> {
    let select = select(db.dialect(), mode);
    let Some(study_type) = study_type else {
        let sql = format!("{select} order by p.id limit $1 offset $2");
        let rows = sqlx::query(&sql).bind(limit).bind(offset).fetch_all(db.pool()).await?;
        return rows.iter().map(|row| project(row, mode)).collect();
    };
    // `classified()` identifies the legacy rows of a span of ids, as the backfill does: here all
    let verdict = study_type.as_str();
    let filter = match (mode, study_type) {
        (Mode::Legacy, _) => format!("c.verdict = '{verdict}'"),
        (Mode::Sti, StudyType::School) => {
            format!("s.project_id is not null or (ss.project_id is null and c.verdict = '{verdict}')")
        }
        (Mode::Sti, StudyType::SelfStudy) => {
            format!("s.project_id is null and (ss.project_id is not null or c.verdict = '{verdict}')")
        }
    };
    let sql = format!(
        "{select} join {} c on c.id = p.id where {filter} order by p.id limit $3 offset $4",
        classified()
    );
    let all = crate::domain::span::Span::ALL;
    let rows = sqlx::query(&sql)
        .bind(all.first)
        .bind(all.last)
        .bind(limit)
        .bind(offset)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|row| project(row, mode)).collect()
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("there is no project {0}")]
    NotFound(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Now, as the target database stores times.
fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .unwrap_or_default()
}

/// A parameter written into a timestamp or date column.
fn param(dialect: Dialect, n: u8, sql_type: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("${n}"),
        Dialect::Postgres => format!("cast(${n} as {sql_type})"),
    }
}

/// The legacy columns of a written project: the canonical type and the fields of its subtype.
fn legacy_values(p: &NewProject) -> (&'static str, Option<&str>, Option<i64>, Option<&str>, Option<&str>) {
    match &p.subtype {
        SubtypeRow::School { school_name, grade } => ("school", Some(school_name), *grade, None, None),
        SubtypeRow::SelfStudy { pace, goal_date } => {
            ("self_study", None, None, pace.as_deref(), goal_date.as_deref())
        }
    }
}

/// Binds `$1`..`$8` of a create or a replace: the legacy columns of `p` and the time of the write.
fn bind_legacy<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    p: &'q NewProject,
    now: &'q str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let (project_type, school_name, grade, pace, goal_date) = legacy_values(p);
    query
        .bind(&p.title)
        .bind(p.owner_id)
        .bind(project_type)
        .bind(school_name)
        .bind(grade)
        .bind(pace)
        .bind(goal_date)
        .bind(now)
}

/// Writes the subtype row of project `id` (an application write: no backfill run), with the
/// legacy row's `created_at` (the copied column verification compares). The change capture,
/// while a rollout is in progress, has written the row already from the legacy columns: the
/// application's write takes its place.
async fn write_subtype(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    id: i64,
    p: &NewProject,
) -> Result<(), sqlx::Error> {
    match &p.subtype {
        SubtypeRow::School { school_name, grade } => {
            sqlx::query(
                "insert into school_projects (project_id, school_name, grade, backfill_run_id, created_at)
                 select id, $2, $3, null, created_at from projects where id = $1
                 on conflict (project_id) do update set school_name = excluded.school_name,
                     grade = excluded.grade, backfill_run_id = null, created_at = excluded.created_at",
            )
            .bind(id)
            .bind(school_name)
            .bind(*grade)
            .execute(&mut **tx)
            .await?;
        }
        SubtypeRow::SelfStudy { pace, goal_date } => {
            let goal = param(dialect, 3, "date");
            sqlx::query(&format!(
                "insert into self_study_projects (project_id, pace, goal_date, backfill_run_id, created_at)
                 select id, $2, {goal}, null, created_at from projects where id = $1
                 on conflict (project_id) do update set pace = excluded.pace,
                     goal_date = excluded.goal_date, backfill_run_id = null, created_at = excluded.created_at"
            ))
            .bind(id)
            .bind(pace.as_deref())
            .bind(goal_date.as_deref())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn delete_subtypes(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: i64) -> Result<(), sqlx::Error> {
    for table in ["school_projects", "self_study_projects"] {
        sqlx::query(&format!("delete from {table} where project_id = $1"))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Creates a project: the legacy row, and in STI mode its subtype row in the same transaction.
/// Returns its id. Ids follow the largest; on PostgreSQL a concurrent create that took the same
/// id makes this one retry.
pub async fn create(db: &Database, mode: Mode, p: &NewProject) -> Result<i64, sqlx::Error> {
    let mut attempt = 0;
    loop {
        match try_create(db, mode, p).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt < 5 => attempt += 1,
            other => return other,
        }
    }
}

async fn try_create(db: &Database, mode: Mode, p: &NewProject) -> Result<i64, sqlx::Error> {
    let dialect = db.dialect();
    let now = now();
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "insert into projects (id, title, owner_id, project_type, school_name, grade, pace, goal_date, created_at, updated_at)
         select coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, {}, {}, {} from projects
         returning id",
        param(dialect, 7, "date"),
        param(dialect, 8, "timestamptz"),
        param(dialect, 8, "timestamptz"),
    );
    let id: i64 = bind_legacy(sqlx::query(&sql), p, &now).fetch_one(&mut *tx).await?.try_get("id")?;
    if mode == Mode::Sti {
        write_subtype(&mut tx, dialect, id, p).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Replaces project `id`: its legacy columns, and in STI mode its subtype row (the old one, of
/// either type, goes), in one transaction.
pub async fn replace(db: &Database, mode: Mode, id: i64, p: &NewProject) -> Result<(), WriteError> {
    let dialect = db.dialect();
    let now = now();
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "update projects set title = $1, owner_id = $2, project_type = $3, school_name = $4, grade = $5,
             pace = $6, goal_date = {}, updated_at = {} where id = $9",
        param(dialect, 7, "date"),
        param(dialect, 8, "timestamptz"),
    );
    let updated = bind_legacy(sqlx::query(&sql), p, &now).bind(id).execute(&mut *tx).await?;
    if updated.rows_affected() == 0 {
        return Err(WriteError::NotFound(id));
    }
    if mode == Mode::Sti {
        delete_subtypes(&mut tx, id).await?;
        write_subtype(&mut tx, dialect, id, p).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes project `id` with its subtype rows (they reference it), in either mode.
pub async fn delete(db: &Database, id: i64) -> Result<(), WriteError> {
    let mut tx = db.begin_write().await?;
    delete_subtypes(&mut tx, id).await?;
    let deleted = sqlx::query("delete from projects where id = $1").bind(id).execute(&mut *tx).await?;
    if deleted.rows_affected() == 0 {
        return Err(WriteError::NotFound(id));
    }
    tx.commit().await?;
    Ok(())
}
