//! Deferred validation (PRODUCT §7; PostgreSQL, opt-in). Every row a chunk inserts into a subtype
//! table is checked against `projects` by its foreign key, which locks the legacy row `for key
//! share` — a write to every page of `projects`, two thirds of the backfill's WAL and most of its
//! time (`shared/reference/backfill-baseline.md`). A key added `not valid` still checks every row
//! inserted after it, so deferring the check means: drop the keys for the copy, add them back
//! `not valid` when it ends (an instant: new rows are checked again, deletes cascade again), and
//! validate them once — one scan — when it completed. Rows whose legacy row was deleted while the
//! keys were away are what the cascade would have removed: they are removed before validating.

use super::runs::Held;
use super::{ddl, EngineError};
use crate::db::{Database, Dialect};
use crate::domain::run::RunKind;
use sqlx::Row;
use std::time::{Duration, Instant};

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
pub type Key = [String; 3];

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

/// What runs dropped and nobody validated yet (added back `not valid`, or still missing).
async fn still_dropped(db: &Database) -> Result<Vec<Key>, EngineError> {
    Ok(dropped_by_runs(db).await?.1)
}

/// The runs whose dropped keys nobody validated yet, and those keys (each once).
async fn dropped_by_runs(db: &Database) -> Result<(Vec<i64>, Vec<Key>), EngineError> {
    if db.dialect() != Dialect::Postgres {
        return Ok((Vec::new(), Vec::new()));
    }
    let rows = sqlx::query(
        "select id, dropped_fks from sti_backfill_runs
         where dropped_fks is not null and fk_restored_at is null order by id",
    )
    .fetch_all(db.pool())
    .await?;
    let (mut runs, mut keys): (Vec<i64>, Vec<Key>) = (Vec::new(), Vec::new());
    for row in rows {
        runs.push(row.try_get("id")?);
        let list: String = row.try_get("dropped_fks")?;
        let dropped: Vec<Key> = serde_json::from_str(&list).map_err(|e| {
            EngineError::Corrupt(format!("a run's dropped foreign keys are not readable: {e}"))
        })?;
        for key in dropped {
            if !keys.iter().any(|k| k[0] == key[0] && k[1] == key[1]) {
                keys.push(key);
            }
        }
    }
    Ok((runs, keys))
}

/// The keys a run dropped that are not in the catalog now: while so, the application's writes
/// to the subtype tables are not checked against `projects` and deletes do not cascade. The
/// environment page and `migrate --plan` show it; the next holder of a run and every console
/// replica's watch put them back.
pub async fn dropped(db: &Database) -> Result<Vec<Key>, EngineError> {
    let recorded = still_dropped(db).await?;
    if recorded.is_empty() {
        return Ok(recorded);
    }
    let mut tx = db.pool().begin().await?;
    let present = foreign_keys(&mut tx).await?;
    tx.rollback().await?;
    Ok(recorded.into_iter().filter(|k| !present.iter().any(|p| p[0] == k[0] && p[1] == k[1])).collect())
}

/// What the page and `migrate --plan` say of keys that are off (none: nothing to say): the
/// tables whose key is, and whether a live deferred run's copy is why.
pub async fn notice(db: &Database) -> Result<Option<String>, EngineError> {
    let mut tables: Vec<String> = dropped(db).await?.into_iter().map(|[table, _, _]| table).collect();
    if tables.is_empty() {
        return Ok(None);
    }
    tables.dedup();
    let mut during_run = None;
    if let Some(run) = super::runs::active(db).await? {
        // a dead run's copy is no reason any more
        if run.defer_fks && !super::runs::abandoned(db, &run).await? {
            during_run = Some(run.id);
        }
    }
    Ok(crate::domain::live::keys_off_notice(&tables, during_run))
}

/// Drops the keys for the run's copy, once (a runner that takes the run over finds them
/// dropped), recording what it dropped in the run row, fenced by the token, in one transaction.
/// One try: the locks are taken in the application's order and waited for a moment only (see
/// [`super::ddl`]); the run's loop waits a lock out as any other fault, saying so.
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
    ddl::lock_in_application_order(&mut tx, db.dialect(), ddl::TRY_LOCK_TIMEOUT, ddl::Mode::AccessExclusive)
        .await?;
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
/// checked and deletes cascade again. Quick: it reads no rows. One try, whose lock waits end
/// after `lock_timeout`; the keys that were missing and are back now. Nothing is put back while
/// a deferred run other than `holder` is active.
pub async fn restore(
    db: &Database,
    lock_timeout: Duration,
    holder: Option<i64>,
) -> Result<Vec<Key>, EngineError> {
    // read first, without a lock: most of the time nothing is missing, and the tables' locks
    // are not asked for at all
    let keys = dropped(db).await?;
    if keys.is_empty() {
        return Ok(keys);
    }
    let mut tx = db.begin_write().await?;
    ddl::lock_in_application_order(&mut tx, db.dialect(), lock_timeout, ddl::Mode::ShareRowExclusive).await?;
    // under the locks a deferred run's drop also takes: one that became active since is the
    // reason they are off, and they are its to put back (its own validation passes `holder`)
    let copying: Option<i64> =
        sqlx::query_scalar("select id from sti_backfill_runs where active_slot = 1 and defer_fks = 1")
            .fetch_optional(&mut *tx)
            .await?;
    if copying.is_some_and(|run| Some(run) != holder) {
        return Ok(Vec::new());
    }
    let present = foreign_keys(&mut tx).await?;
    let mut added = Vec::new();
    for key in keys {
        let [table, name, definition] = &key;
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
        added.push(key);
    }
    tx.commit().await?;
    if !added.is_empty() {
        tracing::info!(keys = added.len(), "the subtype tables' foreign keys are back, not valid yet");
    }
    Ok(added)
}

/// [`restore`], tried again behind the application's transactions for up to `give_up_after`.
pub async fn restore_with_tries(db: &Database, give_up_after: Duration) -> Result<Vec<Key>, EngineError> {
    ddl::with_tries(db, "adding the subtype tables' foreign keys back", give_up_after, || {
        restore(db, ddl::TRY_LOCK_TIMEOUT, None)
    })
    .await
}

/// The validation step of a completed copy: adds the keys back and validates each — one scan,
/// without blocking the application's writes, under a statement timeout of its own
/// (`session.fk_validation_timeout_ms`), and never retried as a passing fault. When a key finds
/// rows without their project: those a backfill or the capture wrote are what the cascade
/// would have removed had the key been there (their project was deleted during the copy) and
/// are removed, counted in the log; rows the application wrote while the key was off are
/// reported and kept, and the run fails with them. Records how long it all took. A key that
/// fails stays in place `not valid` for the next run to validate.
pub async fn validate(db: &Database, held: &Held) -> Result<i64, EngineError> {
    let started = Instant::now();
    restore(db, ddl::TRY_LOCK_TIMEOUT, Some(held.run.id)).await?;
    // the runs whose keys this validates: only they are marked done at the end (a run that
    // drops them again meanwhile is another's to validate)
    let (runs, keys) = dropped_by_runs(db).await?;
    let limit_ms = held.policy.session.fk_validation_timeout_ms.max(1);
    for [table, name, _] in &keys {
        match validate_key(db, table, name, limit_ms).await? {
            Validated::Valid => continue,
            Validated::Orphans => {}
        }
        // only then the second scan: rows without their project
        let (removed, theirs) = orphans(db, table, limit_ms).await?;
        if removed > 0 {
            tracing::warn!(run_id = held.run.id, table = %table, removed,
                "rows the backfill or the capture wrote whose project was deleted during the copy were removed, as the cascade would have");
        }
        if !theirs.is_empty() {
            return Err(EngineError::Orphans {
                table: table.clone(),
                ids: theirs.iter().take(10).map(i64::to_string).collect::<Vec<_>>().join(", ")
                    + if theirs.len() > 10 { ", …" } else { "" },
            });
        }
        if let Validated::Orphans = validate_key(db, table, name, limit_ms).await? {
            return Err(EngineError::Corrupt(format!(
                "{table}.{name} still finds rows without their project"
            )));
        }
    }
    let ms = super::backfill::elapsed_ms(started);
    let now = db.dialect().now_ms_sql();
    if !runs.is_empty() {
        // integers only: the list is written out
        let ids = runs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        sqlx::query(&format!("update sti_backfill_runs set fk_restored_at = {now} where id in ({ids})"))
            .execute(db.pool())
            .await?;
    }
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

/// Rows of `table` without their project, under the validation's own time limit: those a
/// backfill or the capture wrote are removed (their project went during the copy; the cascade
/// would have taken them), and the first of those the application wrote are listed, kept.
async fn orphans(db: &Database, table: &str, limit_ms: i64) -> Result<(u64, Vec<i64>), EngineError> {
    let what = format!("{table} (its rows without a project)");
    let mut tx = limited(db, limit_ms).await?;
    let removed = sqlx::query(&format!(
        "delete from {} s where s.backfill_run_id is not null
           and not exists (select 1 from projects p where p.id = s.project_id)",
        quoted(table)
    ))
    .execute(&mut *tx)
    .await
    .map_err(|e| timed_out(e, &what, limit_ms))?
    .rows_affected();
    let theirs: Vec<i64> = sqlx::query_scalar(&format!(
        "select s.project_id from {} s where not exists (select 1 from projects p where p.id = s.project_id)
         order by s.project_id limit 11",
        quoted(table)
    ))
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| timed_out(e, &what, limit_ms))?;
    tx.commit().await?;
    Ok((removed, theirs))
}

enum Validated {
    Valid,
    /// The key found rows without their project (23503).
    Orphans,
}

/// One `validate constraint` under the validation's own time limit.
async fn validate_key(
    db: &Database,
    table: &str,
    name: &str,
    limit_ms: i64,
) -> Result<Validated, EngineError> {
    let mut tx = limited(db, limit_ms).await?;
    let validated =
        sqlx::query(&format!("alter table {} validate constraint {}", quoted(table), quoted(name)))
            .execute(&mut *tx)
            .await;
    match validated {
        Ok(_) => {
            tx.commit().await?;
            Ok(Validated::Valid)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23503") => Ok(Validated::Orphans),
        Err(e) => Err(timed_out(e, &format!("{table}.{name}"), limit_ms)),
    }
}

/// A transaction of its own whose statements stop after `limit_ms` (the validation's limit,
/// not the session's, which is for chunks).
async fn limited(db: &Database, limit_ms: i64) -> Result<sqlx::Transaction<'static, sqlx::Any>, EngineError> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(&format!("set local statement_timeout = '{limit_ms}ms'")).execute(&mut *tx).await?;
    Ok(tx)
}

/// `error`, or the validation's own timeout when the limit stopped `what` (57014): not a passing
/// fault the run would wait out and scan again.
fn timed_out(error: sqlx::Error, what: &str, limit_ms: i64) -> EngineError {
    match &error {
        sqlx::Error::Database(e) if e.code().as_deref() == Some("57014") => {
            EngineError::ValidationTimeout { key: what.to_owned(), limit_ms }
        }
        _ => error.into(),
    }
}

/// Whether a run dropped keys that nobody validated yet (the next completed backfill does).
pub async fn pending(db: &Database) -> Result<bool, EngineError> {
    Ok(!still_dropped(db).await?.is_empty())
}
