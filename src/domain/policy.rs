//! How a run meets a database that misbehaves: how long it waits out a fault and how often it
//! tries again, when it splits a failing chunk, when it gives up, what its sessions may hold,
//! and which health signals hold it back. One value per environment, from the config file,
//! checked once before anything starts.

use serde::{Deserialize, Serialize};

/// Waiting out faults, splitting failing chunks, and the breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// The first wait after a retryable fault; it doubles per try, with jitter.
    pub first_backoff_ms: i64,
    /// The longest wait between two tries.
    pub max_backoff_ms: i64,
    /// How long one fault is waited out before the run fails with it.
    pub give_up_after_ms: i64,
    /// Tries of a chunk that fails on its rows before it is split in halves.
    pub split_after: i64,
    /// The breaker: the run fails when more than this share of the last `breaker_window`
    /// chunks had rows that failed.
    pub breaker_ratio: f64,
    pub breaker_window: i64,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            first_backoff_ms: 500,
            max_backoff_ms: 30_000,
            give_up_after_ms: 30 * 60_000,
            split_after: 2,
            breaker_ratio: 0.5,
            breaker_window: 20,
        }
    }
}

impl Retry {
    /// How long one fault is waited out, as a duration.
    pub fn give_up_after(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.give_up_after_ms.max(0) as u64)
    }

    /// The wait before try `attempt` (1 = the first retry): doubling from the first backoff up
    /// to the longest, then a random part of up to a quarter taken off (`jitter` in `[0, 1)`), so
    /// runners that lost the same database do not all come back at the same instant.
    pub fn backoff_ms(&self, attempt: u32, jitter: f64) -> i64 {
        let doubled = self.first_backoff_ms.saturating_mul(1_i64 << attempt.saturating_sub(1).min(30));
        let capped = doubled.min(self.max_backoff_ms);
        capped - (capped as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as i64
    }
}

/// What every engine session on PostgreSQL may hold (`lock_timeout`, `statement_timeout`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Session {
    pub lock_timeout_ms: i64,
    pub statement_timeout_ms: i64,
    /// Deferred validation's own statement timeout: one `validate constraint` scans the whole
    /// subtype table, which takes far longer than any chunk may.
    pub fk_validation_timeout_ms: i64,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            lock_timeout_ms: 5_000,
            statement_timeout_ms: 120_000,
            fk_validation_timeout_ms: 6 * 3_600_000,
        }
    }
}

/// A number read from the database with its threshold: over it, the run holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSignal {
    /// What the page says: `queue depth 1200 > 1000`.
    pub name: String,
    /// One query returning one number, run on the target between chunks.
    pub sql: String,
    pub max: f64,
}

/// Health signals checked between chunks; none is checked unless configured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Throttle {
    /// Hold while a replica replays more than this far behind (PostgreSQL): measured on
    /// `replica_url` when given, else from `pg_stat_replication` on the target.
    pub max_replica_lag_ms: Option<i64>,
    pub replica_url: Option<String>,
    /// Hold while a transaction on the target has been open longer than this (PostgreSQL):
    /// a backfill behind it only grows the table's bloat.
    pub max_transaction_age_ms: Option<i64>,
    pub custom: Option<CustomSignal>,
}

impl Throttle {
    pub fn is_empty(&self) -> bool {
        self.max_replica_lag_ms.is_none() && self.max_transaction_age_ms.is_none() && self.custom.is_none()
    }
}

/// One environment's policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub retry: Retry,
    pub session: Session,
    pub throttle: Throttle,
}

impl Policy {
    /// Every setting in its range, in one sentence naming the setting: checked when the config
    /// is read, so a wrong value stops the start instead of a run.
    pub fn validate(&self) -> Result<(), String> {
        let r = &self.retry;
        let within = |name: &str, value: i64, low: i64, high: i64| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} must be between {low} and {high}, not {value}"))
            }
        };
        within("retry.first_backoff_ms", r.first_backoff_ms, 10, 60_000)?;
        within("retry.max_backoff_ms", r.max_backoff_ms, r.first_backoff_ms, 600_000)?;
        within("retry.give_up_after_ms", r.give_up_after_ms, 1_000, 7 * 24 * 3_600_000)?;
        within("retry.split_after", r.split_after, 1, 20)?;
        within("retry.breaker_window", r.breaker_window, 1, 10_000)?;
        if !(r.breaker_ratio > 0.0 && r.breaker_ratio <= 1.0) {
            return Err(format!(
                "retry.breaker_ratio must be above 0 and at most 1, not {}",
                r.breaker_ratio
            ));
        }
        within("session.lock_timeout_ms", self.session.lock_timeout_ms, 1, 600_000)?;
        within("session.statement_timeout_ms", self.session.statement_timeout_ms, 100, 24 * 3_600_000)?;
        within(
            "session.fk_validation_timeout_ms",
            self.session.fk_validation_timeout_ms,
            1,
            7 * 24 * 3_600_000,
        )?;
        let t = &self.throttle;
        if let Some(lag) = t.max_replica_lag_ms {
            within("throttle.max_replica_lag_ms", lag, 1, 24 * 3_600_000)?;
        }
        if t.replica_url.is_some() && t.max_replica_lag_ms.is_none() {
            return Err("throttle.replica_url needs throttle.max_replica_lag_ms".into());
        }
        if let Some(age) = t.max_transaction_age_ms {
            within("throttle.max_transaction_age_ms", age, 1, 7 * 24 * 3_600_000)?;
        }
        if let Some(custom) = &t.custom {
            if custom.name.trim().is_empty() || custom.sql.trim().is_empty() {
                return Err("throttle.custom needs a name and a sql query".into());
            }
            if !custom.max.is_finite() {
                return Err(format!("throttle.custom.max must be a number, not {}", custom.max));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_backoff_doubles_up_to_its_cap() {
        let policy = Policy::default();
        assert_eq!(policy.validate(), Ok(()));
        let r = &policy.retry;
        assert_eq!((r.backoff_ms(1, 0.0), r.backoff_ms(2, 0.0), r.backoff_ms(3, 0.0)), (500, 1_000, 2_000));
        assert_eq!(r.backoff_ms(12, 0.0), 30_000);
        assert_eq!(r.backoff_ms(64, 0.0), 30_000, "no overflow however long it waits");
        assert_eq!(r.backoff_ms(1, 0.999), 376, "jitter takes up to a quarter off");
    }

    #[test]
    fn a_setting_out_of_range_is_named_with_its_range() {
        let mut policy = Policy::default();
        policy.retry.first_backoff_ms = 0;
        assert_eq!(
            policy.validate().unwrap_err(),
            "retry.first_backoff_ms must be between 10 and 60000, not 0"
        );
        let mut policy = Policy::default();
        policy.retry.max_backoff_ms = 100;
        assert!(policy.validate().unwrap_err().starts_with("retry.max_backoff_ms must be between 500"));
        let mut policy = Policy::default();
        policy.retry.breaker_ratio = 0.0;
        assert!(policy.validate().unwrap_err().contains("breaker_ratio"));
        let mut policy = Policy::default();
        policy.session.statement_timeout_ms = -5;
        assert!(policy.validate().unwrap_err().contains("statement_timeout_ms"));
        let mut policy = Policy::default();
        policy.throttle.custom = Some(CustomSignal { name: "queue".into(), sql: " ".into(), max: 1.0 });
        assert!(policy.validate().unwrap_err().contains("custom"));
        let mut policy = Policy::default();
        policy.throttle.replica_url = Some("postgres://replica/app".into());
        assert!(policy.validate().unwrap_err().contains("max_replica_lag_ms"));
    }
}
