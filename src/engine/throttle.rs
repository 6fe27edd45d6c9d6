//! Health throttling: between chunks the runner reads the configured signals — a replica's
//! replay lag, the oldest open transaction on the target, a custom query — and holds while one
//! is over its threshold, saying which and by how much.

use super::{now_ms, EngineError};
use crate::db::{Database, DatabaseUrl, Dialect};
use crate::domain::policy::Throttle;
use crate::domain::run::{Hold, HoldKind};
use std::collections::HashMap;
use std::sync::Mutex;

/// How often a held run looks at its signals again.
pub const CHECK_EVERY_MS: i64 = 1_000;

/// The first signal over its threshold, as a hold; `None` when every signal is under (or none
/// is configured, which costs nothing).
pub async fn check(db: &Database, throttle: &Throttle) -> Result<Option<Hold>, EngineError> {
    if throttle.is_empty() {
        return Ok(None);
    }
    for (name, value, max) in readings(db, throttle).await? {
        if value > max {
            let reason = format!("{name} {} > {}", show(&name, value), show(&name, max));
            let now = now_ms();
            return Ok(Some(Hold {
                kind: HoldKind::Throttled,
                reason,
                label: name,
                since_ms: now,
                next_try_ms: now + CHECK_EVERY_MS,
                tries: 0,
                gives_up_at_ms: None,
            }));
        }
    }
    Ok(None)
}

/// Reads every configured signal once: a query that fails is named with its error. Used before
/// a run starts, so a wrong query stops the start instead of the run.
pub async fn probe(db: &Database, throttle: &Throttle) -> Result<(), EngineError> {
    readings(db, throttle).await.map(|_| ())
}

/// `(name, value, threshold)` per configured signal; lags and ages in milliseconds.
async fn readings(db: &Database, throttle: &Throttle) -> Result<Vec<(String, f64, f64)>, EngineError> {
    let mut out = Vec::new();
    // a signal the database cannot answer for now (restarting, timing out) is waited out like
    // any fault of it; one that is wrong (a query that fails) stops the start or the run
    let signal_error = |name: &str, e: sqlx::Error| match super::faults::of_sqlx(&e) {
        super::faults::Fault::Retryable(_) => EngineError::from(e),
        _ => EngineError::Signal { name: name.to_owned(), message: e.to_string() },
    };
    if let Some(max) = throttle.max_replica_lag_ms {
        let lag = match &throttle.replica_url {
            Some(url) => {
                let replica = replica(url).await?;
                sqlx::query_scalar::<_, f64>(
                    "select cast(case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
                        else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000, 0) end
                        as double precision)",
                )
                .fetch_one(replica.pool())
                .await
                .map_err(|e| signal_error("replica lag", e))?
            }
            None => {
                postgres_only(db, "throttle.max_replica_lag_ms")?;
                sqlx::query_scalar::<_, f64>(
                    "select cast(coalesce(max(extract(epoch from replay_lag) * 1000), 0) as double precision)
                     from pg_stat_replication",
                )
                .fetch_one(db.pool())
                .await
                .map_err(|e| signal_error("replica lag", e))?
            }
        };
        out.push(("replica lag".to_owned(), lag, max as f64));
    }
    if let Some(max) = throttle.max_transaction_age_ms {
        postgres_only(db, "throttle.max_transaction_age_ms")?;
        // the engine's own sessions (`sti-rollout/…`) are not what it waits for
        let age = sqlx::query_scalar::<_, f64>(
            "select cast(coalesce(max(extract(epoch from clock_timestamp() - xact_start) * 1000), 0) as double precision)
             from pg_stat_activity
             where xact_start is not null and pid <> pg_backend_pid() and datname = current_database()
               and backend_type = 'client backend'
               and application_name not like 'sti-rollout/%'",
        )
        .fetch_one(db.pool())
        .await
        .map_err(|e| signal_error("oldest transaction", e))?;
        out.push(("oldest transaction".to_owned(), age, max as f64));
    }
    if let Some(custom) = &throttle.custom {
        let real = match db.dialect() {
            Dialect::Postgres => "double precision",
            Dialect::Sqlite => "real",
        };
        let value = sqlx::query_scalar::<_, Option<f64>>(&format!(
            "select cast(({}) as {real})",
            custom.sql.trim().trim_end_matches(';')
        ))
        .fetch_one(db.pool())
        .await
        .map_err(|e| signal_error(&custom.name, e))?
        .ok_or_else(|| EngineError::Signal {
            name: custom.name.clone(),
            message: "the query returned null".into(),
        })?;
        out.push((custom.name.clone(), value, custom.max));
    }
    Ok(out)
}

fn postgres_only(db: &Database, setting: &str) -> Result<(), EngineError> {
    match db.dialect() {
        Dialect::Postgres => Ok(()),
        Dialect::Sqlite => Err(EngineError::Signal {
            name: setting.to_owned(),
            message: "only PostgreSQL has replicas and transactions to watch; remove it for a SQLite target"
                .into(),
        }),
    }
}

/// Lags and ages in seconds with one decimal; a custom number as it is.
fn show(name: &str, value: f64) -> String {
    if name == "replica lag" || name == "oldest transaction" {
        format!("{:.1} s", value / 1000.0)
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.2}")
    }
}

/// A pool on the configured replica, made once per URL.
async fn replica(url: &str) -> Result<Database, EngineError> {
    static REPLICAS: Mutex<Option<HashMap<String, Database>>> = Mutex::new(None);
    if let Some(db) = REPLICAS.lock().ok().and_then(|m| m.as_ref().and_then(|m| m.get(url).cloned())) {
        return Ok(db);
    }
    let parsed = DatabaseUrl::parse(url)
        .map_err(|e| EngineError::Signal { name: "throttle.replica_url".into(), message: e.to_string() })?;
    let db = Database::connect(&parsed).await?;
    if let Ok(mut map) = REPLICAS.lock() {
        map.get_or_insert_with(HashMap::new).insert(url.to_owned(), db.clone());
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::show;

    #[test]
    fn lags_read_in_seconds_and_custom_numbers_as_they_are() {
        assert_eq!(show("replica lag", 3_210.0), "3.2 s");
        assert_eq!(show("queue depth", 1_200.0), "1200");
        assert_eq!(show("load", 0.755), "0.76");
    }
}
