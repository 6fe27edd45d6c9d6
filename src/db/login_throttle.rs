//! The sign-in throttle's counters, in the control database so that every console on it (a
//! replica, or this one after a restart) sees the same ones. Two keys per attempt:
//!
//! - the user (`user:NAME`): each failure delays the next check a little longer (nothing the
//!   first time, then 1 s doubling to a minute), so guessing is slow but nobody can lock the
//!   real user out for long; a success clears it.
//! - the address (`addr:IP`): at most [`ADDRESS_LIMIT`] wrong passwords in [`WINDOW_MS`], so
//!   one address cannot spread its guesses over many user names. Attempts the user's delay
//!   refused and right passwords do not count.
//!
//! An attempt is reserved before its password is checked (one conditional `update` each, atomic
//! on both engines): of many sent at once, one is checked and the others wait.

use super::pool::{Database, DbError};
use sqlx::Row;

/// How long an address's attempts are remembered after its last one.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Attempts one address may make in the window.
pub const ADDRESS_LIMIT: i64 = 30;
/// How long a reservation holds the user's next check while its password is being checked.
const HOLD_MS: i64 = 5_000;
/// The longest delay between two checks of one user.
const MAX_DELAY_MS: i64 = 60_000;

/// The delay before the next check of a user who failed `failures` times in a row.
pub fn delay_ms(failures: i64) -> i64 {
    match failures {
        ..=1 => 0,
        n if n >= 8 => MAX_DELAY_MS,
        n => (1000_i64 << (n - 2)).min(MAX_DELAY_MS),
    }
}

/// What became of an attempt's reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Check the password, then report with [`failed`] or [`succeeded`].
    Check,
    /// Refused without a check: try again after `retry_after_s`. `first` when it is the first
    /// refusal for this key in its window (until a success, or 15 minutes without attempts
    /// clear it), the one the audit log records.
    Refused { retry_after_s: i64, first: bool, by_address: bool },
}

fn seconds_until(at: i64, now: i64) -> i64 {
    ((at - now + 999) / 1000).max(1)
}

/// Reserves an attempt for `user` from `address`.
pub async fn reserve(db: &Database, user: &str, address: &str) -> Result<Reservation, DbError> {
    let now = super::now_ms();
    let user_key = format!("user:{user}");
    let address_key = format!("addr:{address}");
    sqlx::query("delete from login_attempts where last_at < $1")
        .bind(now - WINDOW_MS)
        .execute(db.pool())
        .await?;
    sqlx::query(
        "insert into login_attempts (key, last_at) values ($1, $3), ($2, $3) on conflict (key) do nothing",
    )
    .bind(&address_key)
    .bind(&user_key)
    .bind(now)
    .execute(db.pool())
    .await?;
    let counted = sqlx::query(
        "update login_attempts set failures = failures + 1, last_at = $2 where key = $1 and failures < $3",
    )
    .bind(&address_key)
    .bind(now)
    .bind(ADDRESS_LIMIT)
    .execute(db.pool())
    .await?;
    if counted.rows_affected() == 0 {
        let (throttled, last_at) = refuse(db, &address_key, "last_at").await?;
        return Ok(Reservation::Refused {
            retry_after_s: seconds_until(last_at + WINDOW_MS, now),
            first: throttled == 1,
            by_address: true,
        });
    }
    let held =
        sqlx::query("update login_attempts set next_at = $2, last_at = $3 where key = $1 and next_at <= $3")
            .bind(&user_key)
            .bind(now + HOLD_MS)
            .bind(now)
            .execute(db.pool())
            .await?;
    if held.rows_affected() == 0 {
        // the user's delay refused it before any check: it costs the address nothing
        uncount(db, &address_key).await?;
        let (throttled, next_at) = refuse(db, &user_key, "next_at").await?;
        return Ok(Reservation::Refused {
            retry_after_s: seconds_until(next_at, now),
            first: throttled == 1,
            by_address: false,
        });
    }
    Ok(Reservation::Check)
}

/// Counts a refusal on `key`: how many since its last check, and the time column `until`.
async fn refuse(db: &Database, key: &str, until: &str) -> Result<(i64, i64), DbError> {
    let row = sqlx::query(&format!(
        "update login_attempts set throttled = throttled + 1 where key = $1 returning throttled, {until} as until"
    ))
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(row) => Ok((row.try_get("throttled")?, row.try_get("until")?)),
        // pruned in between: nothing to wait for
        None => Ok((1, super::now_ms())),
    }
}

/// After a wrong password: the user's next check waits longer. Returns the failures in a row
/// and the attempts refused so far in the window (the audit log records only the first of
/// those; this count goes into each failed sign-in's entry).
pub async fn failed(db: &Database, user: &str) -> Result<(i64, i64), DbError> {
    let now = super::now_ms();
    let key = format!("user:{user}");
    let row = sqlx::query(
        "update login_attempts set failures = failures + 1, last_at = $2 where key = $1
         returning failures, throttled",
    )
    .bind(&key)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    let (failures, refused) = match row {
        Some(row) => (row.try_get("failures")?, row.try_get("throttled")?),
        None => (1, 0),
    };
    sqlx::query("update login_attempts set next_at = $2 where key = $1")
        .bind(&key)
        .bind(now + delay_ms(failures))
        .execute(db.pool())
        .await?;
    Ok((failures, refused))
}

/// After a right password: the user starts afresh, and the attempt does not count against the
/// address.
pub async fn succeeded(db: &Database, user: &str, address: &str) -> Result<(), DbError> {
    sqlx::query("delete from login_attempts where key = $1")
        .bind(format!("user:{user}"))
        .execute(db.pool())
        .await?;
    uncount(db, &format!("addr:{address}")).await
}

/// Takes back an attempt counted against an address.
async fn uncount(db: &Database, address_key: &str) -> Result<(), DbError> {
    sqlx::query(
        "update login_attempts set failures = case when failures > 0 then failures - 1 else 0 end where key = $1",
    )
    .bind(address_key)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::delay_ms;

    #[test]
    fn the_delay_grows_per_failure_to_a_minute() {
        let delays: Vec<i64> = (0..=10).map(delay_ms).collect();
        assert_eq!(delays, [0, 0, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    }
}
