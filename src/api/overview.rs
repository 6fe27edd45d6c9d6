//! The overview's figures.

use crate::domain::overview::Overview;
use leptos::prelude::*;

/// Every environment's row counts and flag, read now.
#[server(endpoint = "get_overview", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn get_overview() -> Result<Overview, ServerFnError> {
    super::require(crate::domain::access::Role::Viewer).await?;
    let state = super::app_state()?;
    Ok(crate::db::overview::read(&state.control, &state.targets, state.d_day).await)
}
