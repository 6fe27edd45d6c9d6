//! The audit log: who changed what, where, when, from what to what, and why. Append-only: this
//! module inserts and reads, and triggers in both engines refuse updates and deletes.
//!
//! A change to the control database writes its entry in its own transaction ([`record_in`]):
//! the functions that change users, keys, the checklist, the D-day and flags take the actor
//! and write the entry themselves. A change to a target database (runs, projects) cannot share
//! a transaction with the control database: its entry follows it ([`record_or_log`]).

use super::Database;
use crate::domain::environment::Environment;
use sqlx::Row;

/// One thing that happened, as it is recorded.
#[derive(Clone, Debug, Default)]
pub struct Entry<'a> {
    /// `user:NAME`, `key:PREFIX`, `cli:LOGIN` or `system`.
    pub actor: &'a str,
    /// A dotted verb such as `login.failed`, `run.start`, `flag.set`.
    pub action: &'a str,
    pub environment: Option<Environment>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<&'a str>,
}

/// A recorded entry: the domain's `AuditEntry`, as the page, the exports and the tests read it.
pub use crate::domain::audit::AuditEntry as Recorded;

/// Appends an entry.
pub async fn record(db: &Database, entry: Entry<'_>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    record_in(&mut tx, entry).await?;
    tx.commit().await
}

/// Appends an entry in the transaction that makes the change it records: the two commit
/// together or not at all. Every change to the control database goes through this.
pub async fn record_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    entry: Entry<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_log (at, actor, action, environment, before, after, reason)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(super::now_ms())
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.environment.map(|e| e.as_str()))
    .bind(entry.before.map(|v| v.to_string()))
    .bind(entry.after.map(|v| v.to_string()))
    .bind(entry.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends an entry for a change made in another database than this one (a run or a project in
/// an environment's target), which has already happened: a lost entry is logged loudly rather
/// than failing a request whose change stands.
pub async fn record_or_log(db: &Database, entry: Entry<'_>) {
    let action = entry.action.to_owned();
    if let Err(error) = record(db, entry).await {
        tracing::error!(%error, action, "cannot write the audit log");
    }
}

/// The newest entries first, at most `limit`, optionally for one environment.
pub async fn recent(
    db: &Database,
    environment: Option<Environment>,
    limit: i64,
) -> Result<Vec<Recorded>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "select {COLUMNS} from audit_log
             where cast($1 as text) is null or environment = cast($1 as text) order by id desc limit $2"
    ))
    .bind(environment.map(|e| e.as_str()))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// What the audit page and its exports filter on; every part optional.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub environment: Option<String>,
    /// The actor exactly (`user:ana`), or the name after its colon (`ana`).
    pub actor: Option<String>,
    /// The action exactly, or a prefix ending with a dot (`run.`).
    pub action: Option<String>,
    /// Epoch milliseconds, inclusive.
    pub from_ms: Option<i64>,
    /// Epoch milliseconds, exclusive.
    pub to_ms: Option<i64>,
}

impl Filter {
    /// The filter from a form or a query string: blank parts are absent; days are `YYYY-MM-DD`
    /// (UTC), `to` included. Says what is wrong with a part that cannot be read.
    pub fn parse(env: &str, actor: &str, action: &str, from: &str, to: &str) -> Result<Self, String> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let day = |s: &str, what: &str| match text(s) {
            None => Ok(None),
            Some(d) => crate::domain::audit::parse_day(&d)
                .map(Some)
                .ok_or_else(|| format!("{what} must be a date like 2026-11-27, not '{d}'")),
        };
        let environment = match text(env) {
            None => None,
            Some(e) => Some(Environment::parse(&e).map_err(|e| e.to_string())?.as_str().to_owned()),
        };
        Ok(Self {
            environment,
            actor: text(actor),
            action: text(action),
            from_ms: day(from, "from")?,
            to_ms: day(to, "to")?.map(|ms| ms + 86_400_000),
        })
    }
}

const WHERE: &str = "(cast($1 as text) is null or environment = cast($1 as text))
    and (cast($2 as text) is null or actor = cast($2 as text) or actor like '%:' || cast($2 as text))
    and (cast($3 as text) is null or action = cast($3 as text)
         or (cast($3 as text) like '%.' and action like cast($3 as text) || '%'))
    and (cast($4 as bigint) is null or at >= cast($4 as bigint))
    and (cast($5 as bigint) is null or at < cast($5 as bigint))";

/// The columns every read of the log returns.
const COLUMNS: &str = "id, at, actor, action, environment, before, after, reason";

/// `sql` (which uses [`WHERE`]) with `filter` bound to `$1`…`$5`.
fn filtered<'q>(
    sql: &'q str,
    filter: &Filter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(filter.environment.clone())
        .bind(filter.actor.clone())
        .bind(filter.action.clone())
        .bind(filter.from_ms)
        .bind(filter.to_ms)
}

/// Entries matching `filter`, newest first (`limit` of them after `offset`), and how many match.
pub async fn search(
    db: &Database,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Recorded>, i64), sqlx::Error> {
    let count = format!("select count(*) as n from audit_log where {WHERE}");
    let total: i64 = filtered(&count, filter).fetch_one(db.pool()).await?.try_get("n")?;
    let page = format!("select {COLUMNS} from audit_log where {WHERE} order by id desc limit $6 offset $7");
    let rows = filtered(&page, filter).bind(limit).bind(offset).fetch_all(db.pool()).await?;
    Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
}

/// Entries matching `filter` older than entry `before` (all when `None`), newest first, at most
/// `limit`: the exports read the log page by page this way, never whole.
pub async fn page_before(
    db: &Database,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Recorded>, sqlx::Error> {
    let page = format!(
        "select {COLUMNS} from audit_log where {WHERE}
         and (cast($6 as bigint) is null or id < cast($6 as bigint)) order by id desc limit $7"
    );
    let rows = filtered(&page, filter).bind(before).bind(limit).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Recorded, sqlx::Error> {
    Ok(Recorded {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        environment: row.try_get("environment")?,
        before: row.try_get("before")?,
        after: row.try_get("after")?,
        reason: row.try_get("reason")?,
    })
}
