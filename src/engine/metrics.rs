//! The figures `/metrics` exposes, read from the control database's mirror of every run, so
//! runs started from the CLI count as much as runs started in the console.

use super::EngineError;
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::health::{Health, Pace};
use crate::domain::run::{HoldKind, RunKind, RunState};
use sqlx::Row;
use std::collections::BTreeMap;

/// Upper bounds of the chunk-duration histogram, in seconds.
pub const DURATION_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// One environment's backfill figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvironmentMetrics {
    pub school_created: i64,
    pub self_study_created: i64,
    pub school_skipped: i64,
    pub self_study_skipped: i64,
    pub errors: i64,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`].
    pub duration_buckets: [i64; DURATION_BUCKETS.len()],
    pub duration_count: i64,
    pub duration_sum_ms: i64,
    /// When the last backfill completed (ms since the epoch).
    pub last_success_ms: Option<i64>,
    /// The state of the newest run, of either kind.
    pub state: Option<RunState>,
    /// The newest run's health ([`Health::as_str`]).
    pub health: Option<&'static str>,
    /// Rows per second of the running backfill, as its page says it (recent chunks).
    pub rows_per_second: f64,
    /// What the running run holds for, with the reason's label, while its runner says so.
    pub hold: Option<(HoldKind, String)>,
    /// When the newest run's last chunk committed (ms since the epoch).
    pub last_chunk_ms: Option<i64>,
    /// Each flag's state, by key (`ENABLE_STI`), and how many times it was set.
    pub flags: Vec<FlagMetrics>,
}

/// One flag of an environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagMetrics {
    pub key: String,
    pub enabled: bool,
    /// Times it was set: switched on or off, or turned off by an emergency stop.
    pub changes: i64,
}

/// Every environment's figures; environments without runs are present with zeros.
pub async fn snapshot(control: &Database) -> Result<BTreeMap<Environment, EnvironmentMetrics>, EngineError> {
    let mut all: BTreeMap<Environment, EnvironmentMetrics> =
        Environment::ALL.into_iter().map(|env| (env, EnvironmentMetrics::default())).collect();
    let totals = sqlx::query(
        "select environment,
            cast(coalesce(sum(school_created), 0) as bigint) as school_created,
            cast(coalesce(sum(self_study_created), 0) as bigint) as self_study_created,
            cast(coalesce(sum(school_skipped), 0) as bigint) as school_skipped,
            cast(coalesce(sum(self_study_skipped), 0) as bigint) as self_study_skipped,
            cast(coalesce(sum(errors), 0) as bigint) as errors,
            max(case when state = 'completed' then finished_at end) as last_success
         from runs where kind = 'backfill' group by environment",
    )
    .fetch_all(control.pool())
    .await?;
    for row in totals {
        let Some(m) = metrics_for(&mut all, &row.try_get::<String, _>("environment")?) else { continue };
        m.school_created = row.try_get("school_created")?;
        m.self_study_created = row.try_get("self_study_created")?;
        m.school_skipped = row.try_get("school_skipped")?;
        m.self_study_skipped = row.try_get("self_study_skipped")?;
        m.errors = row.try_get("errors")?;
        m.last_success_ms = row.try_get("last_success")?;
    }

    let buckets: String = DURATION_BUCKETS
        .iter()
        .enumerate()
        .map(|(i, le)| {
            format!(", sum(case when c.duration_ms <= {} then 1 else 0 end) as b{i}", (le * 1000.0) as i64)
        })
        .collect();
    let histogram = sqlx::query(&format!(
        "select c.environment, count(*) as n, cast(coalesce(sum(c.duration_ms), 0) as bigint) as total_ms {buckets}
         from run_chunks c join runs r on r.environment = c.environment and r.run_id = c.run_id
         where r.kind = 'backfill' group by c.environment"
    ))
    .fetch_all(control.pool())
    .await?;
    for row in histogram {
        let Some(m) = metrics_for(&mut all, &row.try_get::<String, _>("environment")?) else { continue };
        m.duration_count = row.try_get("n")?;
        m.duration_sum_ms = row.try_get("total_ms")?;
        for i in 0..DURATION_BUCKETS.len() {
            m.duration_buckets[i] = row.try_get(format!("b{i}").as_str())?;
        }
    }

    // the newest run's health and pace, as the pages derive them
    let now = crate::db::now_ms();
    for (env, m) in all.iter_mut() {
        let Some(run) = crate::db::live::history(control, *env, 1).await?.pop() else { continue };
        let health = Health::of(&run, now);
        if health.is_moving() && run.kind == RunKind::Backfill {
            let window = crate::domain::health::RATE_WINDOW as i64;
            let ledger = crate::db::live::last_chunks(control, *env, run.id, window).await?;
            m.rows_per_second = Pace::of(&run, &health, &ledger).rows_per_second.unwrap_or(0.0);
        }
        m.hold = match &health {
            Health::Waiting(hold) | Health::Throttled(hold) => Some((hold.kind, hold.label.clone())),
            _ => None,
        };
        m.state = Some(run.state);
        m.health = Some(health.as_str());
    }
    let last_chunks = sqlx::query(
        "select c.environment, max(c.committed_at) as at from run_chunks c
         where c.run_id = (select max(n.run_id) from runs n where n.environment = c.environment)
         group by c.environment",
    )
    .fetch_all(control.pool())
    .await?;
    for row in last_chunks {
        let Some(m) = metrics_for(&mut all, &row.try_get::<String, _>("environment")?) else { continue };
        m.last_chunk_ms = row.try_get::<Option<i64>, _>("at")?.filter(|at| *at > 0);
    }

    let flags = sqlx::query(
        "select f.environment, f.key, case when f.enabled then 1 else 0 end as enabled,
                (select count(*) from audit_log a where a.environment = f.environment
                   and a.action in ('flag.set', 'emergency_stop')) as changes
         from flags f order by f.environment, f.key",
    )
    .fetch_all(control.pool())
    .await?;
    for row in flags {
        let Some(m) = metrics_for(&mut all, &row.try_get::<String, _>("environment")?) else { continue };
        m.flags.push(FlagMetrics {
            key: row.try_get("key")?,
            enabled: row.try_get::<i64, _>("enabled")? == 1,
            changes: row.try_get("changes")?,
        });
    }
    Ok(all)
}

fn metrics_for<'a>(
    all: &'a mut BTreeMap<Environment, EnvironmentMetrics>,
    name: &str,
) -> Option<&'a mut EnvironmentMetrics> {
    all.get_mut(&Environment::parse(name).ok()?)
}
