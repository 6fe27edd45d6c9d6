//! API keys in the control database: only their SHA-256 is stored (a key is 256 random bits, so a
//! fast hash is enough — unlike passwords, it cannot be guessed from a dictionary).

use super::pool::{Database, DbError};
use crate::domain::access::Scope;
use crate::domain::environment::Environment;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// A key as listed: never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub environment: Environment,
    pub scope: Scope,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When it stops working by itself, if ever.
    pub expires_at: Option<i64>,
    /// When an application last presented it (to the minute), if ever.
    pub last_used_at: Option<i64>,
}

/// Who presented a valid key: what the handlers check and the audit trail names (`key:PREFIX`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHolder {
    pub id: i64,
    pub environment: Environment,
    pub scope: Scope,
    pub prefix: String,
}

impl KeyHolder {
    /// How the audit log names what this key did.
    pub fn actor(&self) -> String {
        format!("key:{}", self.prefix)
    }
}

/// How often a key's last use is written down at most.
const LAST_USED_EVERY_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("there is no API key #{0}")]
    NotFound(i64),
    #[error("API key #{0} is already revoked")]
    AlreadyRevoked(i64),
    #[error("API key row is not valid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ApiKeyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// The SHA-256 of a key, in hex: what is stored and looked up.
pub fn key_hash(key: &str) -> String {
    super::hex(&Sha256::digest(key.as_bytes()))
}

/// A new random key for `env`: `sti_<env>_` and 64 hex digits.
pub fn generate(env: Environment) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let random = super::hex(&bytes);
    format!("sti_{env}_{random}")
}

/// Creates a key that never expires and returns it in the clear, the only time it exists so.
pub async fn create(
    db: &Database,
    env: Environment,
    scope: Scope,
    created_by: &str,
) -> Result<(ApiKey, String), ApiKeyError> {
    create_expiring(db, env, scope, created_by, None).await
}

/// Creates a key that stops working at `expires_at` (ms since the epoch), if given.
pub async fn create_expiring(
    db: &Database,
    env: Environment,
    scope: Scope,
    created_by: &str,
    expires_at: Option<i64>,
) -> Result<(ApiKey, String), ApiKeyError> {
    let key = generate(env);
    let prefix: String = key.chars().take(16).collect();
    let mut tx = db.begin_write().await?;
    let id: i64 = sqlx::query(
        "insert into api_keys (environment, scope, prefix, key_hash, created_by, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(env.as_str())
    .bind(scope.as_str())
    .bind(&prefix)
    .bind(key_hash(&key))
    .bind(created_by)
    .bind(super::now_ms())
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    super::audit::record_in(
        &mut tx,
        super::audit::Entry {
            actor: created_by,
            action: "apikey.create",
            environment: Some(env),
            after: Some(serde_json::json!({
                "id": id, "scope": scope.as_str(), "prefix": prefix, "expires_at": expires_at,
            })),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    let created = list(db).await?.into_iter().find(|k| k.id == id).ok_or(ApiKeyError::NotFound(id))?;
    Ok((created, key))
}

/// The holder of a presented key, if it exists, is not revoked and has not expired. Notes the
/// use (at most once a minute per key).
pub async fn authenticate(db: &Database, key: &str) -> Result<Option<KeyHolder>, ApiKeyError> {
    let now = super::now_ms();
    let row = sqlx::query(
        "select id, environment, scope, prefix, last_used_at from api_keys
         where key_hash = $1 and revoked_at is null and (expires_at is null or expires_at > $2)",
    )
    .bind(key_hash(key))
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let env: String = row.try_get("environment")?;
    let scope: String = row.try_get("scope")?;
    let holder = KeyHolder {
        id: row.try_get("id")?,
        environment: Environment::parse(&env).map_err(|e| ApiKeyError::Corrupt(e.to_string()))?,
        scope: Scope::parse(&scope).map_err(|e| ApiKeyError::Corrupt(e.to_string()))?,
        prefix: row.try_get("prefix")?,
    };
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if last_used.is_none_or(|at| at < now - LAST_USED_EVERY_MS) {
        sqlx::query("update api_keys set last_used_at = $1 where id = $2")
            .bind(now)
            .bind(holder.id)
            .execute(db.pool())
            .await?;
    }
    Ok(Some(holder))
}

/// Every key, newest first, revoked ones included.
pub async fn list(db: &Database) -> Result<Vec<ApiKey>, ApiKeyError> {
    let rows = sqlx::query(
        "select id, environment, scope, prefix, created_by, created_at, revoked_at, expires_at, last_used_at
         from api_keys order by id desc",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let env: String = row.try_get("environment")?;
            let scope: String = row.try_get("scope")?;
            Ok(ApiKey {
                id: row.try_get("id")?,
                environment: Environment::parse(&env).map_err(|e| ApiKeyError::Corrupt(e.to_string()))?,
                scope: Scope::parse(&scope).map_err(|e| ApiKeyError::Corrupt(e.to_string()))?,
                prefix: row.try_get("prefix")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
                expires_at: row.try_get("expires_at")?,
                last_used_at: row.try_get("last_used_at")?,
            })
        })
        .collect()
}

/// Revokes a key as `by`, with its audit entry (`apikey.revoke`): it stops working at once.
pub async fn revoke(db: &Database, id: i64, by: &str) -> Result<(), ApiKeyError> {
    let mut tx = db.begin_write().await?;
    let revoked = sqlx::query("update api_keys set revoked_at = $1 where id = $2 and revoked_at is null")
        .bind(super::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if revoked.rows_affected() == 1 {
        super::audit::record_in(
            &mut tx,
            super::audit::Entry {
                actor: by,
                action: "apikey.revoke",
                after: Some(serde_json::json!({ "id": id })),
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    drop(tx);
    match list(db).await?.into_iter().find(|k| k.id == id) {
        Some(_) => Err(ApiKeyError::AlreadyRevoked(id)),
        None => Err(ApiKeyError::NotFound(id)),
    }
}
