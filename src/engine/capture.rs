//! Change capture while a rollout is in progress: triggers on the target's `projects` that
//! keep the subtype rows in step with every application write — from any client, raw SQL
//! included. An insert gets its subtype row, an update re-identifies the row (moving it between
//! the subtype tables, or to the dead letters when it turned dirty), a delete takes its subtype
//! row. Installed by the engine when an operator starts a live backfill, removed by a rollback
//! (as pgroll installs and removes its triggers around a migration).
//!
//! Identification stays one rule: the triggers run [`classified`] on the written row, the very
//! subquery the backfill copies with. Rows the capture writes carry their own provenance,
//! [`CAPTURE_PROVENANCE`] — not a run's id, not the application's null — and a rollback deletes
//! them with the runs' rows.

use super::EngineError;
use crate::db::classify::{classified, Subtype};
use crate::db::{Database, Dialect};
use std::time::Duration;

/// `backfill_run_id` of a subtype row the change capture wrote.
pub const CAPTURE_PROVENANCE: i64 = 0;

/// The statements that make the subtype rows of legacy row `id` (an SQL expression: `new.id`,
/// a literal) what identification says, writing `provenance` into the rows they write and
/// recording a dirty row as a dead letter of `dead_letter_run`. Each statement is idempotent;
/// a row already right is not written (its provenance stays).
///
/// On SQLite, whose triggers cannot catch an error, a subtype row the table refuses (a check,
/// not-null or unique rule of the application's) is skipped (`insert or ignore`) and recorded as
/// a dead letter instead of failing the application's write; on PostgreSQL the capture's
/// function catches any refusal in a subtransaction (see [`install`]).
pub fn reidentify(
    dialect: Dialect,
    id: &str,
    provenance: &str,
    dead_letter_run: &str,
    now: &str,
) -> Vec<String> {
    // one row by its key: `id = x`, not the chunks' range `id >= x and id <= x`, whose
    // generic plan PostgreSQL estimates at many rows, so that every trigger call planned its six
    // statements afresh (eight times slower writes)
    let row = classified().replace(crate::db::classify::RANGE, &format!("where id = ({id})"));
    debug_assert!(!row.contains("$1"), "classified() names its range as it did");
    let c = &row;
    let mut statements = Vec::new();
    for subtype in Subtype::ALL {
        // a row in a table identification does not name for it leaves it
        statements.push(format!(
            "delete from {table} where project_id = ({id})
               and not exists (select 1 from {c} c where c.verdict = '{verdict}')",
            table = subtype.table(),
            verdict = subtype.verdict(),
        ));
    }
    for subtype in Subtype::ALL {
        match dialect {
            Dialect::Postgres => statements.push(subtype.upsert_from(c, provenance)),
            // an upsert's update part cannot be told to ignore a unique rule: an update and an
            // insert, each `or ignore`
            Dialect::Sqlite => {
                let (table, source) = (subtype.table(), subtype.copy_source(c));
                let columns = subtype.copied().join(", ");
                statements.push(format!(
                    "update or ignore {table} set ({columns}, backfill_run_id) =
                        (select {columns}, {provenance} from {source} c where c.id = {table}.project_id)
                     where project_id = ({id})
                       and exists (select 1 from {source} c where c.id = {table}.project_id and not ({holds}))",
                    holds = subtype.holds_copy(table, "c"),
                ));
                // the row is looked for first: inside an application's upsert that updates,
                // SQLite applies the outer statement's conflict policy (abort) to the trigger's
                // statements, and `or ignore` no longer ignores the key
                statements.push(
                    subtype.insert_from(c, provenance, false).replacen(
                        "insert into",
                        "insert or ignore into",
                        1,
                    ) + &format!(" and not exists (select 1 from {table} t where t.project_id = c.id)"),
                );
            }
        }
    }
    statements.extend([
        format!(
            "insert into sti_backfill_dead_letters (run_id, project_id, reason, recorded_at)
             select {dead_letter_run}, id, substr(verdict, 3), {now} from {c} c
             where c.verdict like 'x:%' and {dead_letter_run} is not null
             on conflict (run_id, project_id) do update set reason = excluded.reason"
        ),
        // a row that is clean again is no dead letter any more, of any run
        format!(
            "delete from sti_backfill_dead_letters where project_id = ({id})
               and not exists (select 1 from {c} c where c.verdict like 'x:%')"
        ),
    ]);
    if dialect == Dialect::Sqlite {
        for subtype in Subtype::ALL {
            let table = subtype.table();
            statements.push(format!(
                "insert into sti_backfill_dead_letters (run_id, project_id, reason, recorded_at)
                 select {dead_letter_run}, c.id, '{REFUSED}{table} did not take the row (a check, not-null or unique rule of the table)', {now}
                 from {source} c
                 where {dead_letter_run} is not null
                   and not exists (select 1 from {table} t where t.project_id = c.id and {holds})
                 on conflict (run_id, project_id) do update set reason = excluded.reason",
                REFUSED = super::backfill::REFUSED_PREFIX,
                source = subtype.copy_source(c),
                holds = subtype.holds_copy("t", "c"),
            ));
        }
    }
    statements
}

/// The statements that remove what legacy row `id` (deleted, or moved to another id) had.
fn forget(id: &str) -> Vec<String> {
    ["school_projects", "self_study_projects", "sti_backfill_dead_letters"]
        .into_iter()
        .map(|table| format!("delete from {table} where project_id = ({id})"))
        .collect()
}

/// The run a dirty row written by the application is recorded under: the newest backfill.
const NEWEST_BACKFILL: &str =
    "(select max(id) from sti_backfill_runs where kind = 'backfill' and ids is null)";

/// Columns whose change can change what a row becomes (an update of a title alone costs the
/// capture nothing).
const IDENTIFYING: [&str; 7] =
    ["id", "project_type", "school_name", "grade", "pace", "goal_date", "created_at"];

/// The capture's version, written into its objects (a comment on the PostgreSQL function, a
/// comment in SQLite's insert trigger): a target whose capture is older is brought up to date
/// when the console or a command opens it ([`refresh`]).
const VERSION: &str = "sti-capture 2026-12-07";

/// The names the capture's objects have in the target.
const PG_FUNCTION: &str = "sti_capture_projects";
const PG_TRIGGER: &str = "sti_capture_projects";
/// The function and triggers that let an application's own subtype row win (see [`install`]).
const PG_YIELD_FUNCTION: &str = "sti_capture_yield";
const PG_YIELD_TRIGGER: &str = "sti_capture_yield";
const SQLITE_TRIGGERS: [&str; 6] = [
    "sti_capture_insert",
    "sti_capture_move",
    "sti_capture_update",
    "sti_capture_delete",
    "sti_capture_yield_school",
    "sti_capture_yield_self_study",
];

/// Whether the capture is installed on `db`.
pub async fn installed(db: &Database) -> Result<bool, EngineError> {
    let found: i64 =
        sqlx::query_scalar(installed_sql(db.dialect())).bind(PG_TRIGGER).fetch_one(db.pool()).await?;
    Ok(found > 0)
}

/// How many capture triggers `projects` has (`$1`: the PostgreSQL trigger's name).
fn installed_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "select count(*) from pg_trigger where tgname = $1 and tgrelid = 'projects'::regclass"
        }
        Dialect::Sqlite => {
            "select count(*) from sqlite_master where type = 'trigger' and tbl_name = 'projects'
               and name like 'sti_capture_%' and $1 is not null"
        }
    }
}

/// The statements that delete the capture's own subtype rows of the project an application's
/// subtype row (`new`) is for: its own row wins over the capture's.
fn yield_to_application() -> Vec<String> {
    Subtype::ALL
        .map(|s| {
            format!(
                "delete from {} where project_id = new.project_id and backfill_run_id = {CAPTURE_PROVENANCE}",
                s.table()
            )
        })
        .to_vec()
}

/// Installs (or brings up to date) the capture, in one transaction whose lock waits end after
/// `lock_timeout` (PostgreSQL: a trigger takes a lock on `projects` that queues every
/// application write behind it while it waits; [`super::ddl::with_tries`] tries again). It
/// takes the tables in the application's order. Idempotent; whether it was installed now
/// (`false`: it was already).
///
/// The capture must never make an application write fail that would succeed without it:
/// - it runs with the rights of the role that installs it (PostgreSQL: `security definer`
///   with a fixed `search_path`), so an application role granted only what it uses on
///   `projects` and the subtype tables needs nothing on the engine's tables;
/// - a subtype row the target refuses (an application's check or trigger) becomes a dead
///   letter (PostgreSQL: the function's own subtransaction; SQLite: see [`reidentify`]);
/// - an application that writes its own subtype row after the legacy row — a plain insert or
///   an upsert, the dual write of STI mode — replaces the row the capture wrote for it instead
///   of failing on its key (a `before insert` trigger on each subtype table).
pub async fn install(db: &Database, lock_timeout: Duration) -> Result<bool, EngineError> {
    let now = db.dialect().now_ms_sql();
    let mut tx = db.begin_write().await?;
    if db.dialect() == Dialect::Postgres {
        sqlx::query(&format!("set local lock_timeout = '{}ms'", lock_timeout.as_millis().max(1)))
            .execute(&mut *tx)
            .await?;
        // runners starting at once install it one after the other (SQLite's write transaction
        // does this by itself): two concurrent `create or replace function`s collide in the
        // catalogue, and each would see no trigger yet and create one
        sqlx::query("select pg_advisory_xact_lock(hashtext($1))").bind(PG_FUNCTION).execute(&mut *tx).await?;
    }
    super::ddl::lock_in_application_order(
        &mut tx,
        db.dialect(),
        lock_timeout,
        super::ddl::Mode::ShareRowExclusive,
    )
    .await?;
    // read inside the transaction, after the others installing it: whether this one did
    let found: i64 =
        sqlx::query_scalar(installed_sql(db.dialect())).bind(PG_TRIGGER).fetch_one(&mut *tx).await?;
    let was = found > 0;
    match db.dialect() {
        Dialect::Postgres => {
            let body = |statements: Vec<String>| statements.join(";\n        ") + ";";
            let changed = IDENTIFYING.map(|c| format!("old.{c} is distinct from new.{c}")).join(" or ");
            // the functions run as their owner (the role that runs the engine's migrations) and
            // find tables only in this schema: nothing the caller's search_path holds is used
            let schema: String =
                sqlx::query_scalar("select quote_ident(current_schema())").fetch_one(&mut *tx).await?;
            let definer = format!("security definer set search_path = {schema}, pg_temp");
            sqlx::query(&format!(
                "create or replace function {PG_FUNCTION}() returns trigger language plpgsql {definer} as $capture$
                 begin
                    -- before the block: a write that cannot change what the row becomes opens no
                    -- subtransaction
                    if tg_op = 'UPDATE' and old.id = new.id and not ({changed}) then
                        return null;
                    end if;
                    begin
                        if tg_op = 'DELETE' or old.id <> new.id then
                            {forget}
                        end if;
                        if tg_op <> 'DELETE' then
                            {reidentify}
                        end if;
                    exception when integrity_constraint_violation or data_exception or raise_exception then
                        -- the target refused what identification says (a check, a key, a trigger
                        -- of the application's on a subtype table): the application's write
                        -- stands, the row is a dead letter with the target's words. Anything
                        -- else (a deadlock, a lock timeout) fails the write as it would have.
                        insert into sti_backfill_dead_letters (run_id, project_id, reason, recorded_at)
                        select newest.id, coalesce(new.id, old.id), '{refused}' || sqlerrm || ' (' || sqlstate || ')', {now}
                        from (select {NEWEST_BACKFILL} as id) newest where newest.id is not null
                        on conflict (run_id, project_id) do update set reason = excluded.reason;
                    end;
                    return null;
                 end
                 $capture$",
                forget = body(forget("old.id")),
                reidentify = body(reidentify(
                    Dialect::Postgres,
                    "new.id",
                    &CAPTURE_PROVENANCE.to_string(),
                    NEWEST_BACKFILL,
                    now
                )),
                refused = super::backfill::REFUSED_PREFIX,
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "create or replace function {PG_YIELD_FUNCTION}() returns trigger language plpgsql {definer} as $yield$
                 begin
                    {}
                    return new;
                 end
                 $yield$",
                body(yield_to_application())
            ))
            .execute(&mut *tx)
            .await?;
            // run with the engine's rights, they are for the engine's triggers only: nobody may
            // call them or attach them to a table of their own (a trigger fires them regardless)
            sqlx::query(&format!("comment on function {PG_FUNCTION}() is '{VERSION}'"))
                .execute(&mut *tx)
                .await?;
            for function in [PG_FUNCTION, PG_YIELD_FUNCTION] {
                sqlx::query(&format!("revoke all on function {function}() from public"))
                    .execute(&mut *tx)
                    .await?;
            }
            if !was {
                sqlx::query(&format!(
                    "create trigger {PG_TRIGGER} after insert or update or delete on projects
                     for each row execute function {PG_FUNCTION}()"
                ))
                .execute(&mut *tx)
                .await?;
            }
            for subtype in Subtype::ALL {
                let table = subtype.table();
                let present: i64 = sqlx::query_scalar(
                    "select count(*) from pg_trigger where tgname = $1 and tgrelid = to_regclass($2)",
                )
                .bind(PG_YIELD_TRIGGER)
                .bind(table)
                .fetch_one(&mut *tx)
                .await?;
                if present == 0 {
                    sqlx::query(&format!(
                        "create trigger {PG_YIELD_TRIGGER} before insert on {table}
                         for each row when (new.backfill_run_id is null) execute function {PG_YIELD_FUNCTION}()"
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        Dialect::Sqlite => {
            let body = |statements: Vec<String>| statements.join(";\n") + ";";
            let changed = IDENTIFYING.map(|c| format!("old.{c} is not new.{c}")).join(" or ");
            let reidentify = body(reidentify(
                Dialect::Sqlite,
                "new.id",
                &CAPTURE_PROVENANCE.to_string(),
                NEWEST_BACKFILL,
                now,
            ));
            for name in SQLITE_TRIGGERS {
                sqlx::query(&format!("drop trigger if exists {name}")).execute(&mut *tx).await?;
            }
            let yielding = body(yield_to_application());
            for sql in [
                format!("create trigger sti_capture_insert after insert on projects begin /* {VERSION} */ {reidentify} end"),
                // a row whose id changed leaves what its old id had (the two triggers touch
                // different ids, so their order does not matter)
                format!("create trigger sti_capture_update after update on projects when {changed} begin {reidentify} end"),
                format!(
                    "create trigger sti_capture_move after update on projects when old.id is not new.id begin {} end",
                    body(forget("old.id"))
                ),
                format!(
                    "create trigger sti_capture_delete after delete on projects begin {} end",
                    body(forget("old.id"))
                ),
                format!(
                    "create trigger sti_capture_yield_school before insert on school_projects
                     when new.backfill_run_id is null begin {yielding} end"
                ),
                format!(
                    "create trigger sti_capture_yield_self_study before insert on self_study_projects
                     when new.backfill_run_id is null begin {yielding} end"
                ),
            ] {
                sqlx::query(&sql).execute(&mut *tx).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(!was)
}

/// Whether the installed capture is this version's (`true` when none is installed: there is
/// nothing to bring up to date).
async fn up_to_date(db: &Database) -> Result<bool, EngineError> {
    if !installed(db).await? {
        return Ok(true);
    }
    let current: i64 = match db.dialect() {
        Dialect::Postgres => {
            sqlx::query_scalar(
                "select (select count(*) from pg_proc p where p.proname = $1 and obj_description(p.oid, 'pg_proc') = $2)
                      + (select count(*) from pg_trigger where tgname = $3) - 2",
            )
            .bind(PG_FUNCTION)
            .bind(VERSION)
            .bind(PG_YIELD_TRIGGER)
            .fetch_one(db.pool())
            .await?
        }
        Dialect::Sqlite => {
            sqlx::query_scalar(
                "select (select count(*) from sqlite_master where type = 'trigger' and name = 'sti_capture_insert'
                           and instr(sql, $1) > 0)
                      + (select count(*) from sqlite_master where type = 'trigger' and name like 'sti_capture_yield_%') - 2",
            )
            .bind(VERSION)
            .fetch_one(db.pool())
            .await?
        }
    };
    Ok(current == 1)
}

/// Brings an installed capture of an older version up to date (its function's rights, its
/// triggers on the subtype tables, which a table rebuilt by a migration loses), trying for a
/// few seconds behind the application's transactions; logs what it could not do. The console
/// and every command do it when they open a target.
pub async fn refresh(db: &Database) {
    let refreshed = async {
        if up_to_date(db).await? {
            return Ok(false);
        }
        super::ddl::with_tries(db, "bringing the change capture up to date", Duration::from_secs(10), || {
            install(db, super::ddl::TRY_LOCK_TIMEOUT)
        })
        .await
        .map(|_| true)
    };
    match refreshed.await {
        Ok(true) => tracing::info!(version = VERSION, "the change capture was brought up to date"),
        Ok(false) => {}
        Err(error) => {
            tracing::error!(%error, "cannot bring the change capture up to date; the next live backfill does")
        }
    }
}

/// Removes the capture, one try whose lock waits end after `lock_timeout`, taking the tables
/// in the application's order; whether it was installed.
pub async fn remove(db: &Database, lock_timeout: Duration) -> Result<bool, EngineError> {
    let was = installed(db).await?;
    let mut tx = db.begin_write().await?;
    super::ddl::lock_in_application_order(
        &mut tx,
        db.dialect(),
        lock_timeout,
        super::ddl::Mode::AccessExclusive,
    )
    .await?;
    match db.dialect() {
        Dialect::Postgres => {
            sqlx::query(&format!("drop trigger if exists {PG_TRIGGER} on projects"))
                .execute(&mut *tx)
                .await?;
            for subtype in Subtype::ALL {
                sqlx::query(&format!("drop trigger if exists {PG_YIELD_TRIGGER} on {}", subtype.table()))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&format!("drop function if exists {PG_FUNCTION}()")).execute(&mut *tx).await?;
            sqlx::query(&format!("drop function if exists {PG_YIELD_FUNCTION}()")).execute(&mut *tx).await?;
        }
        Dialect::Sqlite => {
            for name in SQLITE_TRIGGERS {
                sqlx::query(&format!("drop trigger if exists {name}")).execute(&mut *tx).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(was)
}

/// Re-identifies the legacy rows `ids` in one transaction, writing `provenance`: what the
/// capture does for one written row, done for rows a verification found different.
pub async fn reidentify_ids(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    ids: &[i64],
    provenance: i64,
) -> Result<(), EngineError> {
    for id in ids {
        // literals: every statement names the id a different number of times
        let (id_sql, provenance_sql) = (id.to_string(), provenance.to_string());
        // one id the target refuses (a constraint, a trigger) becomes a dead letter with its
        // error, as a backfill's refused row does; the other ids go on
        sqlx::query("savepoint sti_reidentify").execute(&mut **tx).await?;
        let mut refused = None;
        for sql in reidentify(dialect, &id_sql, &provenance_sql, &provenance_sql, dialect.now_ms_sql()) {
            if let Err(error) = sqlx::query(&sql).execute(&mut **tx).await {
                match super::faults::of_sqlx(&error) {
                    super::faults::Fault::Rows(reason) => {
                        refused = Some(reason);
                        break;
                    }
                    _ => return Err(error.into()),
                }
            }
        }
        if let Some(reason) = refused {
            sqlx::query("rollback to savepoint sti_reidentify").execute(&mut **tx).await?;
            sqlx::query(&format!(
                "insert into sti_backfill_dead_letters (run_id, project_id, reason, recorded_at)
                 values ($1, $2, $3, {})
                 on conflict (run_id, project_id) do update set reason = excluded.reason",
                dialect.now_ms_sql()
            ))
            .bind(provenance)
            .bind(id)
            .bind(format!("{}{reason}", super::backfill::REFUSED_PREFIX))
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query("release savepoint sti_reidentify").execute(&mut **tx).await?;
        // a row that is gone has nothing left to re-identify: what it had goes
        let exists: i64 = sqlx::query_scalar("select count(*) from projects where id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        if exists == 0 {
            for sql in forget(&id_sql) {
                sqlx::query(&sql).execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}
