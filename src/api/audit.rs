//! The audit log's page: every change, filtered (everyone signed in may read it).

use crate::domain::audit::AuditPage;
use leptos::prelude::*;

/// Entries per page.
pub const PER_PAGE: i64 = 50;

/// A page of the audit log, newest first, filtered by environment, actor, action and dates.
#[server(endpoint = "audit_log", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn audit_log(
    env: String,
    actor: String,
    action: String,
    from: String,
    to: String,
    page: i64,
) -> Result<AuditPage, ServerFnError> {
    use super::environment::server::{db_error, fail};
    super::require(crate::domain::access::Role::Viewer).await?;
    let state = super::app_state()?;
    let filter = crate::db::audit::Filter::parse(&env, &actor, &action, &from, &to)
        .map_err(|e| fail(axum::http::StatusCode::BAD_REQUEST, e))?;
    // a page far beyond the end is an empty page, not an overflow
    let page = page.clamp(1, i64::MAX / PER_PAGE);
    let (entries, total) = crate::db::audit::search(&state.control, &filter, PER_PAGE, (page - 1) * PER_PAGE)
        .await
        .map_err(|e| db_error("the audit log", e))?;
    Ok(AuditPage { entries, total, page, per_page: PER_PAGE })
}
