//! (ssr) Databases: connecting, migrating, and the queries the layers above call.
//!
//! Both engines go through one `sqlx::AnyPool`, so a query written once runs on SQLite and on
//! PostgreSQL; where the two dialects differ (data generation), the query is chosen by [`Dialect`].

pub mod api_keys;
pub mod audit;
pub mod checklist;
pub mod classify;
pub mod control;
pub mod joined_read;
pub mod live;
pub mod login_throttle;
pub mod overview;
pub mod pool;
pub mod projects;
pub mod rollout;
pub mod seed;
pub mod sessions;
pub mod target;
pub mod target_schema;
pub mod timeline;
pub mod url;
pub mod users;
pub mod webhooks;

pub use pool::{Database, DbError, Dialect, Schema, SessionSettings};
pub use url::DatabaseUrl;

/// The current time as RFC 3339 text in UTC, the form every timestamp in the control database has.
pub fn now_rfc3339() -> String {
    let now =
        time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// `bytes` as lowercase hex: digests, signatures, random ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` random bytes from the operating system, as hex: session ids, passwords, identities.
pub fn random_hex(bytes: usize) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut buffer = vec![0_u8; bytes];
    OsRng.fill_bytes(&mut buffer);
    hex(&buffer)
}

/// Logs an internal error under a new random id and returns the id. Browsers are shown a plain
/// sentence and this id, never the error's own text (database messages name tables and columns);
/// the id finds the log line.
pub fn log_with_id(what: &str, error: &dyn std::fmt::Display) -> String {
    let id = random_hex(4);
    tracing::error!(error_id = %id, %error, "{what}");
    id
}

/// Milliseconds since the Unix epoch by this process's clock: the sessions' times, and the
/// engine's where no lease depends on them (leases use the database's clock,
/// [`Dialect::now_ms_sql`]).
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    now.saturating_add(clock_skew_ms())
}

/// Debug builds only: `STI_CLOCK_SKEW_MS` sets this process's clock off by that many
/// milliseconds, so a test can play a runner on a machine whose clock is wrong.
fn clock_skew_ms() -> i64 {
    #[cfg(debug_assertions)]
    {
        static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
        *SKEW
            .get_or_init(|| std::env::var("STI_CLOCK_SKEW_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0))
    }
    #[cfg(not(debug_assertions))]
    0
}
