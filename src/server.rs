//! (ssr) The web server: configuration, startup and the router, and the plain HTTP endpoints.

pub mod account;
pub mod assets;
pub mod auth;
pub mod client_address;
pub mod config;
pub mod events;
pub mod headers;
pub mod health;
pub mod http_metrics;
pub mod metrics;
pub mod ofrep;
pub mod password;
pub mod projects;
pub mod render;
pub mod requests;
pub mod routes;
pub mod startup;
pub mod state;
pub mod watch;
pub mod webhooks;

/// A `503` for a database that failed: the log gets `what` and the error under a new error id;
/// the answer names `database` and the id, never the database's own words.
pub(crate) fn unavailable(
    what: &str,
    database: &str,
    error: &dyn std::fmt::Display,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let id = crate::db::log_with_id(what, error);
    let body = format!("{database} cannot be used just now; try again (error id {id})\n");
    (axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}
