//! What a target database must hold for the engine, checked against what it does hold.
//!
//! A configured target is the application's own database: the console never creates or changes
//! anything in it on its own. It reads the schema, reports exactly what differs from what the
//! engine reads and writes, and leaves the changes to `sti-rollout migrate --env E`, which says
//! what it will do, waits for locks only briefly, and refuses a table that exists in another shape
//! (`create table if not exists` would accept it silently).

pub mod grants;
mod migrate;

pub use migrate::{join, migrate, pending, MigrateError, Pending, DEFAULT_LOCK_TIMEOUT};

use super::pool::{Database, DbError, Dialect};
use sqlx::Row;
use std::collections::BTreeSet;
use std::fmt;

/// How a column's values are stored, as far as the engine cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Integer,
    Text,
    /// `date` on PostgreSQL, ISO text on SQLite.
    Date,
    /// `timestamptz` on PostgreSQL, RFC 3339 text on SQLite.
    Timestamp,
}

impl Family {
    /// The family of a type as the database names it (`information_schema.columns.data_type` on
    /// PostgreSQL, the declared type on SQLite, whose affinity rules decide).
    fn of(dialect: Dialect, declared: &str) -> Option<Self> {
        let t = declared.to_ascii_lowercase();
        match dialect {
            Dialect::Postgres => match t.as_str() {
                "smallint" | "integer" | "bigint" => Some(Self::Integer),
                "text" | "character varying" | "character" => Some(Self::Text),
                "date" => Some(Self::Date),
                "timestamp with time zone" | "timestamp without time zone" => Some(Self::Timestamp),
                _ => None,
            },
            Dialect::Sqlite if t.contains("int") => Some(Self::Integer),
            Dialect::Sqlite if t.contains("char") || t.contains("clob") || t.contains("text") => {
                Some(Self::Text)
            }
            // numeric affinity, but an ISO date or time is not a number: it is stored as text
            Dialect::Sqlite if t.contains("date") => Some(Self::Date),
            Dialect::Sqlite if t.contains("time") => Some(Self::Timestamp),
            Dialect::Sqlite => None,
        }
    }

    /// Whether a column of `found` holds what the engine expects of `self`.
    fn accepts(self, dialect: Dialect, found: Option<Self>) -> bool {
        match (dialect, self) {
            // SQLite keeps dates and times as text, whatever the column's declared type says
            (Dialect::Sqlite, Self::Date | Self::Timestamp) => {
                matches!(found, Some(Self::Text | Self::Date | Self::Timestamp))
            }
            _ => found == Some(self),
        }
    }

    fn name(self, dialect: Dialect) -> &'static str {
        match (dialect, self) {
            (_, Self::Integer) => "an integer",
            (_, Self::Text) => "text",
            (Dialect::Postgres, Self::Date) => "a date",
            (Dialect::Postgres, Self::Timestamp) => "a timestamp",
            (Dialect::Sqlite, Self::Date | Self::Timestamp) => "text",
        }
    }
}

/// One column the engine reads or writes: name, family, and whether it is `not null`.
type Column = (&'static str, Family, bool);

/// One table the engine needs.
struct Table {
    name: &'static str,
    columns: &'static [Column],
    /// The engine only reads it (the application's legacy table): its nullability and any
    /// further columns are the application's business.
    read_only: bool,
    /// A subtype table: keyed by `project_id`, its rows deleted with their project.
    subtype: bool,
}

use Family::{Date, Integer, Text, Timestamp};

const TABLES: &[Table] = &[
    Table {
        name: "projects",
        columns: &[
            ("id", Integer, true),
            ("title", Text, true),
            ("owner_id", Integer, true),
            ("project_type", Text, false),
            ("school_name", Text, false),
            ("grade", Integer, false),
            ("pace", Text, false),
            ("goal_date", Date, false),
            ("created_at", Timestamp, true),
            ("updated_at", Timestamp, true),
        ],
        read_only: true,
        subtype: false,
    },
    Table {
        name: "school_projects",
        columns: &[
            ("project_id", Integer, true),
            ("school_name", Text, true),
            ("grade", Integer, false),
            ("backfill_run_id", Integer, false),
            ("created_at", Timestamp, true),
        ],
        read_only: false,
        subtype: true,
    },
    Table {
        name: "self_study_projects",
        columns: &[
            ("project_id", Integer, true),
            ("pace", Text, false),
            ("goal_date", Date, false),
            ("backfill_run_id", Integer, false),
            ("created_at", Timestamp, true),
        ],
        read_only: false,
        subtype: true,
    },
    Table {
        name: "sti_backfill_runs",
        columns: &[
            ("id", Integer, true),
            ("kind", Text, true),
            ("state", Text, true),
            ("active_slot", Integer, false),
            ("requested", Text, false),
            ("started_by", Text, true),
            ("chunk_size", Integer, true),
            ("pause_ms", Integer, true),
            ("target_chunk_ms", Integer, false),
            ("low_id", Integer, true),
            ("high_id", Integer, true),
            ("checkpoint", Integer, true),
            ("rows_expected", Integer, false),
            ("fencing_token", Integer, true),
            ("lease_owner", Text, false),
            ("lease_expires_at", Integer, false),
            ("lease_ms", Integer, false),
            ("chunks", Integer, true),
            ("rows_read", Integer, true),
            ("school_created", Integer, true),
            ("self_study_created", Integer, true),
            ("school_skipped", Integer, true),
            ("self_study_skipped", Integer, true),
            ("errors", Integer, true),
            ("error", Text, false),
            ("created_at", Integer, true),
            ("updated_at", Integer, true),
            ("finished_at", Integer, false),
            ("ids", Text, false),
            ("workers", Integer, true),
            ("defer_fks", Integer, true),
            ("dropped_fks", Text, false),
            ("fk_restored_at", Integer, false),
            ("fk_validation_ms", Integer, false),
        ],
        read_only: false,
        subtype: false,
    },
    Table {
        name: "sti_backfill_chunks",
        columns: &[
            ("run_id", Integer, true),
            ("chunk_no", Integer, true),
            ("from_id", Integer, true),
            ("to_id", Integer, true),
            ("rows_read", Integer, true),
            ("school_created", Integer, true),
            ("self_study_created", Integer, true),
            ("school_skipped", Integer, true),
            ("self_study_skipped", Integer, true),
            ("errors", Integer, true),
            ("duration_ms", Integer, true),
            ("committed_at", Integer, true),
            ("worker", Text, false),
            ("slice_no", Integer, false),
        ],
        read_only: false,
        subtype: false,
    },
    Table {
        name: "sti_backfill_slices",
        columns: &[
            ("run_id", Integer, true),
            ("slice_no", Integer, true),
            ("low_id", Integer, true),
            ("high_id", Integer, true),
            ("checkpoint", Integer, true),
            ("done", Integer, true),
            ("claim_token", Integer, true),
            ("claimed_by", Text, false),
            ("claim_expires_at", Integer, false),
            ("error", Text, false),
        ],
        read_only: false,
        subtype: false,
    },
    Table {
        name: "sti_target_identity",
        columns: &[("singleton", Integer, true), ("id", Text, true), ("created_at", Integer, true)],
        read_only: false,
        subtype: false,
    },
    Table {
        name: "sti_backfill_dead_letters",
        columns: &[
            ("run_id", Integer, true),
            ("project_id", Integer, true),
            ("reason", Text, true),
            ("recorded_at", Integer, true),
        ],
        read_only: false,
        subtype: false,
    },
];

/// One way the target differs from what the engine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The table is not there: `migrate` creates it.
    MissingTable(&'static str),
    MissingColumn {
        table: &'static str,
        column: &'static str,
    },
    WrongType {
        table: &'static str,
        column: &'static str,
        expected: &'static str,
        found: String,
    },
    /// The engine writes nulls into it.
    NotNull {
        table: &'static str,
        column: &'static str,
    },
    /// The engine writes no value into it and it has no default.
    UnfilledColumn {
        table: &'static str,
        column: String,
    },
    /// The engine relies on `project_id` being the key (`on conflict (project_id)`).
    NotKeyed(&'static str),
    /// Deleting a project, or changing its id, fails (or leaves an orphan) instead of taking its
    /// subtype row along: `migrate` makes the foreign key cascade both.
    NoCascade(&'static str),
}

impl Difference {
    /// Whether `migrate` can mend it without touching a table that holds someone's rows in
    /// another shape.
    pub fn migrate_mends(&self) -> bool {
        matches!(self, Self::MissingTable(_) | Self::NoCascade(_))
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTable(table) => write!(f, "table {table} does not exist"),
            Self::MissingColumn { table, column } => write!(f, "{table}.{column} does not exist"),
            Self::WrongType { table, column, expected, found } => {
                write!(f, "{table}.{column} is {found}, the engine needs {expected}")
            }
            Self::NotNull { table, column } => {
                write!(f, "{table}.{column} is not null, and the engine writes nulls into it")
            }
            Self::UnfilledColumn { table, column } => {
                write!(f, "{table}.{column} is not null without a default, and the engine does not fill it")
            }
            Self::NotKeyed(table) => write!(f, "{table}.project_id is not its primary key"),
            Self::NoCascade(table) => {
                write!(f, "{table}'s foreign key to projects does not cascade deletes and id changes")
            }
        }
    }
}

/// A column as the database describes it.
struct Found {
    name: String,
    declared: String,
    not_null: bool,
    has_default: bool,
    primary_key: bool,
}

/// Everything in which the target differs from what the engine needs; empty when it fits.
pub async fn check(db: &Database) -> Result<Vec<Difference>, DbError> {
    let dialect = db.dialect();
    let mut differences = Vec::new();
    for table in TABLES {
        let found = columns(db, table.name).await?;
        if found.is_empty() {
            differences.push(Difference::MissingTable(table.name));
            continue;
        }
        let expected: BTreeSet<&str> = table.columns.iter().map(|c| c.0).collect();
        for &(column, family, not_null) in table.columns {
            let Some(col) = found.iter().find(|f| f.name == column) else {
                differences.push(Difference::MissingColumn { table: table.name, column });
                continue;
            };
            if !family.accepts(dialect, Family::of(dialect, &col.declared)) {
                differences.push(Difference::WrongType {
                    table: table.name,
                    column,
                    expected: family.name(dialect),
                    found: if col.declared.is_empty() { "untyped".into() } else { col.declared.clone() },
                });
            }
            if !table.read_only && col.not_null && !not_null && !col.primary_key {
                differences.push(Difference::NotNull { table: table.name, column });
            }
        }
        if !table.read_only {
            for col in &found {
                if !expected.contains(col.name.as_str()) && col.not_null && !col.has_default {
                    differences
                        .push(Difference::UnfilledColumn { table: table.name, column: col.name.clone() });
                }
            }
        }
        if table.subtype {
            let keyed = found.iter().filter(|c| c.primary_key).map(|c| c.name.as_str()).collect::<Vec<_>>()
                == ["project_id"];
            if !keyed {
                differences.push(Difference::NotKeyed(table.name));
            }
            if !cascades(db, table.name).await? && !dropped_for_a_run(db, table.name).await? {
                differences.push(Difference::NoCascade(table.name));
            }
        }
    }
    Ok(differences)
}

/// The table's columns, none when it does not exist.
async fn columns(db: &Database, table: &str) -> Result<Vec<Found>, DbError> {
    let sql = match db.dialect() {
        Dialect::Postgres => {
            "select cast(c.column_name as text) as name, cast(c.data_type as text) as declared,
                    cast(case when c.is_nullable = 'NO' then 1 else 0 end as integer) as not_null,
                    cast(case when c.column_default is null and c.is_identity = 'NO' then 0 else 1 end as integer) as has_default,
                    cast(case when exists (
                        select 1 from information_schema.table_constraints t
                        join information_schema.key_column_usage k
                          on k.constraint_name = t.constraint_name and k.table_schema = t.table_schema
                         and k.table_name = t.table_name
                        where t.constraint_type = 'PRIMARY KEY' and t.table_schema = c.table_schema
                          and t.table_name = c.table_name and k.column_name = c.column_name
                    ) then 1 else 0 end as integer) as primary_key
             from information_schema.columns c
             where c.table_schema = current_schema() and c.table_name = $1
             order by c.ordinal_position"
        }
        Dialect::Sqlite => {
            "select name, type as declared, \"notnull\" as not_null,
                    case when dflt_value is null then 0 else 1 end as has_default,
                    case when pk > 0 then 1 else 0 end as primary_key
             from pragma_table_info($1) order by cid"
        }
    };
    let rows = sqlx::query(sql).bind(table).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            let flag = |name: &str| -> Result<bool, sqlx::Error> { Ok(row.try_get::<i64, _>(name)? != 0) };
            Ok(Found {
                name: row.try_get("name")?,
                declared: row.try_get("declared")?,
                not_null: flag("not_null")?,
                has_default: flag("has_default")?,
                primary_key: flag("primary_key")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// Whether a backfill with deferred validation dropped `table`'s foreign key to projects and it is
/// not back yet (the run adds it back, validated, when it completes): while so, it may be missing.
async fn dropped_for_a_run(db: &Database, table: &str) -> Result<bool, DbError> {
    let has_runs: i64 = match db.dialect() {
        Dialect::Postgres => sqlx::query_scalar(
            "select cast(case when to_regclass('sti_backfill_runs') is null then 0 else 1 end as bigint)",
        ),
        Dialect::Sqlite => sqlx::query_scalar(
            "select count(*) from sqlite_master where type = 'table' and name = 'sti_backfill_runs'",
        ),
    }
    .fetch_one(db.pool())
    .await?;
    if has_runs == 0 {
        return Ok(false);
    }
    let dropped: Vec<String> = sqlx::query_scalar(
        "select dropped_fks from sti_backfill_runs where dropped_fks is not null and fk_restored_at is null",
    )
    .fetch_all(db.pool())
    .await
    // a target from before deferred validation has not the column: nothing was dropped
    .unwrap_or_default();
    Ok(dropped.iter().any(|json| {
        serde_json::from_str::<Vec<[String; 3]>>(json).is_ok_and(|keys| keys.iter().any(|k| k[0] == table))
    }))
}

/// Whether every foreign key from `table` to `projects` cascades deletes and id changes (and
/// there is one).
async fn cascades(db: &Database, table: &str) -> Result<bool, DbError> {
    let sql = match db.dialect() {
        Dialect::Postgres => {
            "select cast(case when c.confdeltype = 'c' and c.confupdtype = 'c' then 1 else 0 end as integer)
             from pg_constraint c
             join pg_class t on t.oid = c.conrelid
             join pg_class r on r.oid = c.confrelid
             where c.contype = 'f' and t.relname = $1 and r.relname = 'projects'
               and t.relnamespace = (select oid from pg_namespace where nspname = current_schema())"
        }
        Dialect::Sqlite => {
            "select case when upper(on_delete) = 'CASCADE' and upper(on_update) = 'CASCADE' then 1 else 0 end
             from pragma_foreign_key_list($1) where \"table\" = 'projects'"
        }
    };
    let keys: Vec<i64> = sqlx::query_scalar(sql).bind(table).fetch_all(db.pool()).await?;
    Ok(!keys.is_empty() && keys.iter().all(|&k| k == 1))
}
