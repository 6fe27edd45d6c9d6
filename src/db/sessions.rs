//! Server-side sessions: the browser holds a random id, the control database its SHA-256 and
//! the user it belongs to. Logging in always makes a new id (rotation); disabling a user or
//! changing their password or role deletes their sessions. A session ends at the first of: 12
//! hours after sign-in, its idle time without a request ([`touch`] marks one), sign-out.

use super::api_keys::key_hash;
use super::pool::{Database, DbError};
use super::users::User;
use crate::domain::access::{Role, Username};
use sqlx::Row;

/// How long a session lasts after login.
pub const SESSION_MS: i64 = 12 * 60 * 60 * 1000;

/// A new random session id (256 bits, hex).
fn new_id() -> String {
    super::random_hex(32)
}

/// How often a session's last request is written down at most: the idle time is minutes, so
/// a write per request would be a waste.
const TOUCH_EVERY_MS: i64 = 30_000;

/// Starts a session for `user` that ends after `idle_ms` without a request, ending `previous`
/// (the id the browser had) if given.
pub async fn start(
    db: &Database,
    user: &User,
    previous: Option<&str>,
    idle_ms: i64,
) -> Result<String, DbError> {
    let id = new_id();
    let now = super::now_ms();
    let mut tx = db.begin_write().await?;
    if let Some(previous) = previous {
        sqlx::query("delete from sessions where id_hash = $1")
            .bind(key_hash(previous))
            .execute(&mut *tx)
            .await?;
    }
    // ended sessions of anyone go at the same time, so the table stays small
    sqlx::query("delete from sessions where expires_at < $1 or last_seen_at + idle_ms < $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into sessions (id_hash, user_id, created_at, expires_at, last_seen_at, idle_ms)
         values ($1, $2, $3, $4, $3, $5)",
    )
    .bind(key_hash(&id))
    .bind(user.id)
    .bind(now)
    .bind(now + SESSION_MS)
    .bind(idle_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The user of a live session (neither expired nor idle too long) of an enabled user: their
/// id, name, role and whether they must change their password first.
pub async fn user(db: &Database, id: &str) -> Result<Option<(i64, Username, Role, bool)>, DbError> {
    let row = sqlx::query(
        "select u.id, u.username, u.role, case when u.must_change_password then 1 else 0 end as must_change
         from sessions s join users u on u.id = s.user_id
         where s.id_hash = $1 and s.expires_at > $2 and s.last_seen_at + s.idle_ms > $2 and not u.disabled",
    )
    .bind(key_hash(id))
    .bind(super::now_ms())
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get("id")?;
    let username: String = row.try_get("username")?;
    let role: String = row.try_get("role")?;
    let must_change = row.try_get::<i64, _>("must_change")? == 1;
    // a row that no longer parses (edited by hand) is no valid session
    Ok(Username::parse(&username).ok().zip(Role::parse(&role).ok()).map(|(u, r)| (id, u, r, must_change)))
}

/// Notes a request in a live session, which keeps it from idling out (written at most every
/// half minute).
pub async fn touch(db: &Database, id: &str) -> Result<(), DbError> {
    let now = super::now_ms();
    sqlx::query(
        "update sessions set last_seen_at = $2
         where id_hash = $1 and last_seen_at < $3 and last_seen_at + idle_ms > $2 and expires_at > $2",
    )
    .bind(key_hash(id))
    .bind(now)
    .bind(now - TOUCH_EVERY_MS)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Ends one session.
pub async fn end(db: &Database, id: &str) -> Result<(), DbError> {
    sqlx::query("delete from sessions where id_hash = $1").bind(key_hash(id)).execute(db.pool()).await?;
    Ok(())
}
