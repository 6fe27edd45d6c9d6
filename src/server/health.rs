//! `/health` for load balancers: 200 when the control database answers, 503 otherwise.

use super::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use std::time::Duration;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    control_database: &'static str,
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let ping = sqlx::query("select 1").execute(state.control.pool());
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, Json(Health { status: "ok", control_database: "up" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: control database failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health { status: "unavailable", control_database: "down" }),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health { status: "unavailable", control_database: "timeout" }),
        ),
    }
}
