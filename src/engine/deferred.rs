//! Deferred validation (PRODUCT §7; PostgreSQL, opt-in). Every row a chunk inserts into a subtype
//! table is checked against `projects` by its foreign key, which locks the legacy row `for key
//! share` — a write to every page of `projects`, two thirds of the backfill's WAL and most of its
//! time (`shared/reference/backfill-baseline.md`). A key added `not valid` still checks every row
//! inserted after it, so deferring the check means: drop the keys for the copy, add them back
//! `not valid` when it ends (an instant: new rows are checked again, deletes cascade again), and
//! validate them once — one scan — when it completed. Rows whose legacy row was deleted while the
//! keys were away are what the cascade would have removed: they are removed before validating.

use super::runs::Held;
use super::EngineError;
use crate::db::{Database, Dialect};
use crate::domain::run::RunKind;
use sqlx::Row;
use std::time::Instant;

/// Refuses deferred validation where it does not apply.
pub fn check(dialect: Dialect, kind: RunKind) -> Result<(), EngineError> {
    if dialect != Dialect::Postgres {
        return Err(EngineError::NotSupported(
            "deferred validation needs a PostgreSQL target: SQLite's foreign-key check is a cheap lookup"
                .into(),
        ));
    }
    if kind != RunKind::Backfill {
        return Err(EngineError::NotSupported(format!(
            "deferred validation is for a backfill, not a {}",
            kind.as_str()
        )));
    }
    Ok(())
}

/// One foreign key of a subtype table to `projects`: table, name, definition.
type Key = [String; 3];

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The subtype tables' foreign keys to `projects` as the catalog has them now.
async fn foreign_keys(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<Vec<Key>, EngineError> {
    let rows = sqlx::query(
        "select cast(t.relname as text) as tbl, cast(c.conname as text) as name,
                pg_get_constraintdef(c.oid) as definition
         from pg_constraint c
         join pg_class t on t.oid = c.conrelid
         join pg_class r on r.oid = c.confrelid
         where c.contype = 'f' and r.relname = 'projects'
           and t.relname in ('school_projects', 'self_study_projects')
           and t.relnamespace = (select oid from pg_namespace where nspname = current_schema())
         order by 1, 2",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok([r.try_get("tbl")?, r.try_get("name")?, r.try_get("definition")?]))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(EngineError::from)
}

/// What runs dropped and nobody added back yet.
async fn still_dropped(db: &Database) -> Result<Vec<Key>, EngineError> {
    let lists: Vec<String> = sqlx::query_scalar(
        "select dropped_fks from sti_backfill_runs
         where dropped_fks is not null and fk_restored_at is null order by id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut keys: Vec<Key> = Vec::new();
    for list in lists {
        let dropped: Vec<Key> = serde_json::from_str(&list).map_err(|e| {
            EngineError::Corrupt(format!("a run's dropped foreign keys are not readable: {e}"))
        })?;
        for key in dropped {
            if !keys.iter().any(|k| k[0] == key[0] && k[1] == key[1]) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

async fn lock_timeout(tx: &mut sqlx::Transaction<'_, sqlx::Any>, held: &Held) -> Result<(), EngineError> {
    let ms = held.policy.session.lock_timeout_ms.max(1);
    sqlx::query(&format!("set local lock_timeout = '{ms}ms'")).execute(&mut **tx).await?;
    Ok(())
}

/// Drops the keys for the run's copy, once (a runner that takes the run over finds them
/// dropped), recording what it dropped in the run row, fenced by the token, in one transaction.
pub async fn prepare(db: &Database, held: &Held) -> Result<(), EngineError> {
    let recorded: Option<String> =
        sqlx::query_scalar("select dropped_fks from sti_backfill_runs where id = $1")
            .bind(held.run.id)
            .fetch_one(db.pool())
            .await?;
    if recorded.is_some() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    lock_timeout(&mut tx, held).await?;
    let keys = foreign_keys(&mut tx).await?;
    for [table, name, _] in &keys {
        sqlx::query(&format!("alter table {} drop constraint {}", quoted(table), quoted(name)))
            .execute(&mut *tx)
            .await?;
    }
    let json = serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into());
    let marked =
        sqlx::query("update sti_backfill_runs set dropped_fks = $1 where id = $2 and fencing_token = $3")
            .bind(json)
            .bind(held.run.id)
            .bind(held.token)
            .execute(&mut *tx)
            .await?;
    if marked.rows_affected() == 0 {
        return Err(EngineError::LeaseLost { run_id: held.run.id });
    }
    tx.commit().await?;
    tracing::info!(
        run_id = held.run.id,
        keys = keys.len(),
        "the subtype tables' foreign keys are dropped for the copy"
    );
    Ok(())
}

/// Adds back `not valid` every key a run dropped that is missing: from now on every new row is
/// checked and deletes cascade again. Quick: it reads no rows.
pub async fn restore(db: &Database, held: &Held) -> Result<Vec<Key>, EngineError> {
    let keys = still_dropped(db).await?;
    if keys.is_empty() {
        return Ok(keys);
    }
    let mut tx = db.begin_write().await?;
    lock_timeout(&mut tx, held).await?;
    let present = foreign_keys(&mut tx).await?;
    for [table, name, definition] in &keys {
        if present.iter().any(|k| &k[0] == table && &k[1] == name) {
            continue;
        }
        sqlx::query(&format!(
            "alter table {} add constraint {} {definition} not valid",
            quoted(table),
            quoted(name)
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(keys)
}

/// The validation step of a completed copy: adds the keys back and validates each (one scan,
/// without blocking the application's writes); when a key finds rows whose legacy row was deleted
/// meanwhile, removes them (the cascade's work) and validates again; records how long it all took. A row that still fails fails the run,
/// and the keys stay in place `not valid` for the next run to validate.
pub async fn validate(db: &Database, held: &Held) -> Result<i64, EngineError> {
    let started = Instant::now();
    let keys = restore(db, held).await?;
    for [table, name, _] in &keys {
        let validate = format!("alter table {} validate constraint {}", quoted(table), quoted(name));
        match sqlx::query(&validate).execute(db.pool()).await {
            Ok(_) => continue,
            // 23503: a row without its project; any other error is the run's
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23503") => {}
            Err(e) => return Err(e.into()),
        }
        // only then the second scan: rows whose project the application deleted while the key was
        // away, which the cascade would have removed
        let orphans = sqlx::query(&format!(
            "delete from {} s where not exists (select 1 from projects p where p.id = s.project_id)",
            quoted(table)
        ))
        .execute(db.pool())
        .await?
        .rows_affected();
        tracing::warn!(run_id = held.run.id, table = %table, orphans, "subtype rows whose legacy row was deleted during the copy were removed, as the cascade would have");
        sqlx::query(&validate).execute(db.pool()).await?;
    }
    let ms = super::backfill::elapsed_ms(started);
    let now = db.dialect().now_ms_sql();
    sqlx::query(&format!(
        "update sti_backfill_runs set fk_restored_at = {now} where dropped_fks is not null and fk_restored_at is null"
    ))
    .execute(db.pool())
    .await?;
    sqlx::query("update sti_backfill_runs set fk_validation_ms = $1 where id = $2 and fencing_token = $3")
        .bind(ms)
        .bind(held.run.id)
        .bind(held.token)
        .execute(db.pool())
        .await?;
    tracing::info!(
        run_id = held.run.id,
        keys = keys.len(),
        validation_ms = ms,
        "the foreign keys are back and valid"
    );
    Ok(ms)
}

/// Whether a run dropped keys that nobody validated yet (the next completed backfill does).
pub async fn pending(db: &Database) -> Result<bool, EngineError> {
    Ok(!still_dropped(db).await?.is_empty())
}
