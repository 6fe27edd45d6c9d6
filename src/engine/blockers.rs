//! Who holds a waiting run up, asked of its target database: on PostgreSQL the sessions that
//! hold locks on the rollout's tables or block one of the engine's sessions right now; SQLite
//! keeps no such list, so it gets what to check instead.

use super::EngineError;
use crate::db::{Database, Dialect};
use crate::domain::blockers::{redacted, Blockers, Session};
use sqlx::Row;

/// At most this many sessions are listed.
const LIMIT: i64 = 20;

/// The sessions that may hold the engine up in `db`, the blocking ones first.
pub async fn list(db: &Database) -> Result<Blockers, EngineError> {
    if db.dialect() == Dialect::Sqlite {
        let file = db
            .url()
            .sqlite_file_path()
            .map_or_else(|| "the database file".to_owned(), |p| p.display().to_string());
        return Ok(Blockers::Unknown(format!(
            "SQLite does not say who holds its lock. Look for a long write transaction of the \
             application, a backup or an open sqlite3 shell on {file} (fuser {file} lists the \
             processes that have it open)."
        )));
    }
    // the engine's own sessions are named `sti-rollout/<env>[/run-N]`; a role without
    // pg_read_all_stats sees `<insufficient privilege>` for other roles' statements
    let rows = sqlx::query(
        "select a.pid as pid, coalesce(cast(a.usename as text), '') as usename,
                coalesce(a.application_name, '') as application_name, coalesce(a.state, '') as state,
                cast(extract(epoch from clock_timestamp() - a.xact_start) * 1000 as bigint) as transaction_ms,
                a.wait_event_type || ': ' || a.wait_event as wait, coalesce(a.query, '') as query,
                cast(case when exists (select 1 from pg_stat_activity o
                                        where o.application_name like 'sti-rollout/%'
                                          and a.pid = any(pg_blocking_pids(o.pid)))
                          then 1 else 0 end as bigint) as blocking
         from pg_stat_activity a
         where a.datname = current_database() and a.pid <> pg_backend_pid()
           and a.backend_type = 'client backend'
           and a.application_name not like 'sti-rollout/%'
           and (exists (select 1 from pg_locks l
                         where l.pid = a.pid and l.granted
                           and l.relation = any(cast(array[to_regclass('projects'), to_regclass('school_projects'),
                                                           to_regclass('self_study_projects')] as oid[])))
                or exists (select 1 from pg_stat_activity o
                            where o.application_name like 'sti-rollout/%'
                              and a.pid = any(pg_blocking_pids(o.pid))))
         order by blocking desc, a.xact_start nulls last, a.pid
         limit $1",
    )
    .bind(LIMIT)
    .fetch_all(db.pool())
    .await?;
    let sessions = rows
        .iter()
        .map(|row| {
            Ok(Session {
                pid: i64::from(row.try_get::<i32, _>("pid")?),
                user: row.try_get("usename")?,
                application: row.try_get("application_name")?,
                state: row.try_get("state")?,
                transaction_ms: row.try_get("transaction_ms")?,
                wait: row.try_get("wait")?,
                query: redacted(&row.try_get::<String, _>("query")?),
                blocking: row.try_get::<i64, _>("blocking")? == 1,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Blockers::Sessions(sessions))
}
