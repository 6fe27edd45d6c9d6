//! The two dialects' migrations build the same schema: the same tables, each with the same
//! columns, each column nullable in one exactly when it is in the other. The migration files are
//! written twice by nature (SQLite and PostgreSQL spell types, defaults and triggers apart); this
//! is what keeps the two copies saying the same thing.

use super::support::{fresh_pg_database, open};
use std::collections::BTreeMap;
use sti_rollout::db::{Database, DatabaseUrl, Schema};
use tempfile::TempDir;

/// Table → column → nullable, as the database itself reports it (sqlx's own table left out).
type Shape = BTreeMap<String, BTreeMap<String, bool>>;

async fn sqlite_shape(db: &Database) -> Shape {
    let tables: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'
         and name <> '_sqlx_migrations' order by name",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut shape = Shape::new();
    for table in tables {
        // pragma_table_info: a primary key column is nullable in SQLite unless said otherwise,
        // but never holds null in a rowid table, as PostgreSQL's primary keys
        let columns: Vec<(String, i64, i64)> = sqlx::query_as(
            "select name, cast(\"notnull\" as integer), cast(pk as integer) from pragma_table_info($1)",
        )
        .bind(&table)
        .fetch_all(db.pool())
        .await
        .unwrap();
        let columns =
            columns.into_iter().map(|(name, not_null, pk)| (name, not_null == 0 && pk == 0)).collect();
        shape.insert(table, columns);
    }
    shape
}

async fn postgres_shape(db: &Database) -> Shape {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select table_name::text, column_name::text, is_nullable::text from information_schema.columns
         where table_schema = current_schema() and table_name <> '_sqlx_migrations'
         order by table_name, column_name",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut shape = Shape::new();
    for (table, column, nullable) in rows {
        shape.entry(table).or_default().insert(column, nullable == "YES");
    }
    shape
}

/// What differs between the two shapes, a line each.
fn differences(sqlite: &Shape, postgres: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    for table in sqlite.keys().chain(postgres.keys()).collect::<std::collections::BTreeSet<_>>() {
        match (sqlite.get(table), postgres.get(table)) {
            (Some(_), None) => out.push(format!("{table}: only in SQLite")),
            (None, Some(_)) => out.push(format!("{table}: only in PostgreSQL")),
            (Some(a), Some(b)) => {
                for column in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
                    match (a.get(column), b.get(column)) {
                        (Some(_), None) => out.push(format!("{table}.{column}: only in SQLite")),
                        (None, Some(_)) => out.push(format!("{table}.{column}: only in PostgreSQL")),
                        (Some(x), Some(y)) if x != y => out.push(format!(
                            "{table}.{column}: nullable in {} only",
                            if *x { "SQLite" } else { "PostgreSQL" }
                        )),
                        _ => {}
                    }
                }
            }
            (None, None) => {}
        }
    }
    out
}

async fn compare(schema: Schema) {
    let dir = TempDir::new().unwrap();
    let sqlite = open(&DatabaseUrl::sqlite_file(&dir.path().join("shape.db")), schema).await;
    let postgres = open(&fresh_pg_database().await, schema).await;
    let (a, b) = (sqlite_shape(&sqlite).await, postgres_shape(&postgres).await);
    assert!(a.len() >= 3, "the SQLite schema was read: {a:?}");
    let wrong = differences(&a, &b);
    assert!(wrong.is_empty(), "the {schema:?} migrations of the two dialects differ:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn the_control_migrations_build_the_same_tables_in_both_dialects() {
    compare(Schema::Control).await;
}

#[tokio::test]
async fn the_target_migrations_build_the_same_tables_in_both_dialects() {
    compare(Schema::Target).await;
}

#[test]
fn a_column_missing_or_nullable_on_one_side_is_named() {
    let shape = |cols: &[(&str, bool)]| -> Shape {
        [("runs".to_owned(), cols.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect())].into()
    };
    let wrong = differences(&shape(&[("id", false), ("error", true)]), &shape(&[("id", true)]));
    assert_eq!(wrong, ["runs.error: only in SQLite", "runs.id: nullable in PostgreSQL only"]);
}
