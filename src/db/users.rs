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

const COLUMNS: &str =
    "id, username, role, case when disabled then 1 else 0 end as disabled, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<User, UserError> {
    let username: String = row.try_get("username")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: Username::parse(&username).map_err(|e| UserError::Corrupt(e.to_string()))?,
        role: Role::parse(&role).map_err(|e| UserError::Corrupt(e.to_string()))?,
        disabled: row.try_get::<i64, _>("disabled")? == 1,
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
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "insert into users (username, password_hash, role, disabled, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $5)",
    )
    .bind(username.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(false)
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

/// Replaces the password hash and ends the user's sessions (`user.set_password`); a password
/// someone set is no longer one that must be changed (`$1 = ''` is false for every hash).
pub async fn set_password(
    db: &Database,
    username: &Username,
    password_hash: &str,
    by: &str,
) -> Result<User, UserError> {
    update(
        db,
        username,
        "password_hash = $1, must_change_password = ($1 = '')",
        password_hash,
        by,
        "user.set_password",
    )
    .await
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
