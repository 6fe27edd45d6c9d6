//! The webhook deliveries the environment page lists (`server::webhooks` queues and sends them).

use super::Database;
use crate::domain::environment::Environment;
use crate::domain::notifications::{Delivery, DeliveryState};
use sqlx::Row;

/// `env`'s newest deliveries, newest first, at most 20.
pub async fn recent(control: &Database, env: Environment) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query(
        "select id, hook, event, summary, state, attempts, last_status, last_error, created_at, next_attempt_at,
                finished_at
         from webhook_deliveries where environment = $1 order by id desc limit 20",
    )
    .bind(env.as_str())
    .fetch_all(control.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Delivery {
                id: r.try_get("id")?,
                hook: r.try_get("hook")?,
                event: r.try_get("event")?,
                summary: r.try_get("summary")?,
                state: DeliveryState::parse(&r.try_get::<String, _>("state")?)
                    .unwrap_or(DeliveryState::Pending),
                attempts: r.try_get("attempts")?,
                last_status: r.try_get("last_status")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get("created_at")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                finished_at: r.try_get("finished_at")?,
            })
        })
        .collect()
}
