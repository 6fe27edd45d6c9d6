//! Who is signed in, and the admin's view of API keys.

use crate::domain::access::{ApiKeyInfo, Me};
use leptos::prelude::*;

/// The signed-in user and their role.
#[server(endpoint = "whoami", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn whoami() -> Result<Me, ServerFnError> {
    let user = super::require(crate::domain::access::Role::Viewer).await?;
    Ok(Me { username: user.username.to_string(), role: user.role })
}

/// Every API key, newest first (admins only).
#[server(endpoint = "list_api_keys", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn list_api_keys() -> Result<Vec<ApiKeyInfo>, ServerFnError> {
    super::require(crate::domain::access::Role::Admin).await?;
    let state = super::app_state()?;
    let keys = crate::db::api_keys::list(&state.control)
        .await
        .map_err(|e| super::environment::server::db_error("the API keys", e))?;
    Ok(keys
        .into_iter()
        .map(|k| ApiKeyInfo {
            id: k.id,
            environment: k.environment,
            scope: k.scope,
            prefix: k.prefix,
            created_by: k.created_by,
            created_at: k.created_at,
            revoked: k.revoked_at.is_some(),
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
        })
        .collect())
}

/// Revokes an API key (admins only); it stops working at once.
#[server(endpoint = "revoke_api_key", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn revoke_api_key(id: i64) -> Result<(), ServerFnError> {
    let user = super::require(crate::domain::access::Role::Admin).await?;
    let state = super::app_state()?;
    crate::db::api_keys::revoke(&state.control, id, &user.actor()).await.map_err(|e| {
        use crate::db::api_keys::ApiKeyError;
        let status = match &e {
            ApiKeyError::NotFound(_) => axum::http::StatusCode::NOT_FOUND,
            ApiKeyError::AlreadyRevoked(_) => axum::http::StatusCode::CONFLICT,
            ApiKeyError::Db(_) | ApiKeyError::Corrupt(_) => {
                return super::environment::server::db_error("the API keys", e);
            }
        };
        super::environment::server::fail(status, e.to_string())
    })?;
    tracing::info!(key = id, by = %user.username, "API key revoked");
    Ok(())
}
