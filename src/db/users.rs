//! Users in the control database. Disabling a user or changing their password ends their
//! sessions at once.

use super::audit::Entry;
use super::pool::{Database, DbError};
use crate::domain::access::{Role, Username};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A user as the console knows them (never with the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub username: Username,
    pub role: Role,
    pub disabled: bool,
    /// A generated password (the first administrator's): the user must choose their own before
    /// anything else.
    pub must_change_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("there is no user '{0}'")]
    NotFound(Username),
    #[error("a user '{0}' already exists")]
    Exists(Username),
    #[error("user row is not valid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

const COLUMNS: &str = "id, username, role, case when disabled then 1 else 0 end as disabled,
    case when must_change_password then 1 else 0 end as must_change_password, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<User, UserError> {
    let username: String = row.try_get("username")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: Username::parse(&username).map_err(|e| UserError::Corrupt(e.to_string()))?,
        role: Role::parse(&role).map_err(|e| UserError::Corrupt(e.to_string()))?,
        disabled: row.try_get::<i64, _>("disabled")? == 1,
        must_change_password: row.try_get::<i64, _>("must_change_password")? == 1,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn now() -> i64 {
    super::now_ms()
}

/// The audit trail's view of a user.
fn audited(user: &User) -> serde_json::Value {
    serde_json::json!({ "username": user.username.as_str(), "role": user.role.as_str(), "disabled": user.disabled })
}

/// Adds a user with an already hashed password, as `by`, with its audit entry (`user.add`).
pub async fn create(
    db: &Database,
    username: &Username,
    password_hash: &str,
    role: Role,
    by: &str,
) -> Result<User, UserError> {
    insert(db, username, password_hash, role, by, false).await
}

/// As [`create`], for a password the console generated: the user must replace it at their
/// first sign-in.
pub async fn create_with_generated_password(
    db: &Database,
    username: &Username,
    password_hash: &str,
    role: Role,
    by: &str,
) -> Result<User, UserError> {
    insert(db, username, password_hash, role, by, true).await
}

async fn insert(
    db: &Database,
    username: &Username,
    password_hash: &str,
    role: Role,
    by: &str,
    generated: bool,
) -> Result<User, UserError> {
    let mut tx = db.begin_write().await?;
    // `$5 = 1` is a boolean on PostgreSQL and 0/1 on SQLite: the column's type on each
    let inserted = sqlx::query(
        "insert into users (username, password_hash, role, disabled, must_change_password, created_at, updated_at)
         values ($1, $2, $3, $4, $5 = 1, $6, $6)",
    )
    .bind(username.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(false)
    .bind(i64::from(generated))
    .bind(now())
    .execute(&mut *tx)
    .await;
    if inserted.is_ok() {
        let after =
            serde_json::json!({ "username": username.as_str(), "role": role.as_str(), "disabled": false });
        let entry = Entry { actor: by, action: "user.add", after: Some(after), ..Default::default() };
        super::audit::record_in(&mut tx, entry).await?;
        tx.commit().await?;
    }
    match inserted {
        Ok(_) => find(db, username)
            .await?
            .map(|(user, _)| user)
            .ok_or_else(|| UserError::NotFound(username.clone())),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(UserError::Exists(username.clone())),
        Err(e) => Err(e.into()),
    }
}

/// The user and their password hash.
pub async fn find(db: &Database, username: &Username) -> Result<Option<(User, String)>, UserError> {
    let row = sqlx::query(&format!("select {COLUMNS}, password_hash from users where username = $1"))
        .bind(username.as_str())
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| Ok((from_row(&row)?, row.try_get("password_hash")?))).transpose()
}

/// Every user, by name.
pub async fn list(db: &Database) -> Result<Vec<User>, UserError> {
    let rows =
        sqlx::query(&format!("select {COLUMNS} from users order by username")).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// How many users exist.
pub async fn count(db: &Database) -> Result<i64, UserError> {
    Ok(sqlx::query_scalar("select count(*) from users").fetch_one(db.pool()).await?)
}

/// The signed-in user `user` replaces their own password (`user.change_password`): it is no
/// longer one that must be changed, and every other session of theirs ends; `keep` (the id of
/// the session they changed it in) stays. Returns how many sessions ended.
pub async fn change_own_password(
    db: &Database,
    user: &User,
    password_hash: &str,
    keep: &str,
) -> Result<u64, UserError> {
    let mut tx = db.begin_write().await?;
    // `$3 = 1` is false: a boolean on PostgreSQL, 0 on SQLite
    sqlx::query(
        "update users set password_hash = $1, must_change_password = ($3 = 1), updated_at = $2 where id = $4",
    )
    .bind(password_hash)
    .bind(now())
    .bind(0_i64)
    .bind(user.id)
    .execute(&mut *tx)
    .await?;
    let ended = sqlx::query("delete from sessions where user_id = $1 and id_hash <> $2")
        .bind(user.id)
        .bind(super::api_keys::key_hash(keep))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let entry = Entry {
        actor: &format!("user:{}", user.username),
        action: "user.change_password",
        after: Some(serde_json::json!({ "username": user.username.as_str(), "other_sessions_ended": ended })),
        ..Default::default()
    };
    super::audit::record_in(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(ended)
}

/// Replaces the password hash and ends the user's sessions (`user.set_password`).
pub async fn set_password(
    db: &Database,
    username: &Username,
    password_hash: &str,
    by: &str,
) -> Result<User, UserError> {
    update(db, username, "password_hash = $1", password_hash, by, "user.set_password").await
}

/// Changes the role (`user.set_role`); sessions end so that the new role applies from the next login.
pub async fn set_role(db: &Database, username: &Username, role: Role, by: &str) -> Result<User, UserError> {
    update(db, username, "role = $1", role.as_str(), by, "user.set_role").await
}

/// Disables the user (`user.disable`; the row stays for the audit trail) and ends their sessions.
pub async fn disable(db: &Database, username: &Username, by: &str) -> Result<User, UserError> {
    // a comparison is a boolean on PostgreSQL and 1 on SQLite: one statement for both
    update(db, username, "disabled = ($1 = 'yes')", "yes", by, "user.disable").await
}

/// Sets one column (`set` is a constant of this module, never input), ends the sessions and
/// records `action` by `by`, the user before and after, in one transaction.
async fn update(
    db: &Database,
    username: &Username,
    set: &str,
    value: &str,
    by: &str,
    action: &str,
) -> Result<User, UserError> {
    let (before, _) = find(db, username).await?.ok_or_else(|| UserError::NotFound(username.clone()))?;
    let mut tx = db.begin_write().await?;
    sqlx::query(&format!("update users set {set}, updated_at = $2 where id = $3"))
        .bind(value)
        .bind(now())
        .bind(before.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from sessions where user_id = $1").bind(before.id).execute(&mut *tx).await?;
    let row = sqlx::query(&format!("select {COLUMNS} from users where id = $1"))
        .bind(before.id)
        .fetch_one(&mut *tx)
        .await?;
    let after = from_row(&row)?;
    let entry = Entry {
        actor: by,
        action,
        before: Some(audited(&before)),
        after: Some(audited(&after)),
        ..Default::default()
    };
    super::audit::record_in(&mut tx, entry).await?;
    tx.commit().await?;
    find(db, username).await?.map(|(user, _)| user).ok_or_else(|| UserError::NotFound(username.clone()))
}
