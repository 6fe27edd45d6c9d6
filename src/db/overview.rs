//! Reading what the overview page shows: counts from each target database, flags from control.

use super::control::{self, ENABLE_STI};
use super::joined_read::JoinedRead;
use super::pool::Database;
use super::target;
use crate::domain::calendar::Day;
use crate::domain::environment::{Environment, PerEnv};
use crate::domain::forecast::{self, basis_for, Forecast, Measured};
use crate::domain::live::RunView;
use crate::domain::overview::{EnvironmentStatus, Overview, TableCounts};
use crate::domain::phases::Phase;
use crate::domain::run::RunKind;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// A target database that does not answer within this time is shown as unreachable.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The target database of every environment, with its row counts shared between the viewers
/// who ask at the same moment.
#[derive(Clone, Debug)]
pub struct Targets(Arc<PerEnv<Target>>);

#[derive(Debug)]
struct Target {
    db: Database,
    counts: JoinedRead<Result<TableCounts, String>>,
}

impl Targets {
    pub fn new(databases: PerEnv<Database>) -> Self {
        Self(Arc::new(databases.map(|_, db| Target { db: db.clone(), counts: JoinedRead::default() })))
    }

    /// The environment's database: every environment has one.
    pub fn get(&self, env: Environment) -> &Database {
        &self.0.get(env).db
    }

    pub fn iter(&self) -> impl Iterator<Item = (Environment, &Database)> {
        self.0.iter().map(|(env, target)| (env, &target.db))
    }
}

/// Counts `db`'s tables within [`READ_TIMEOUT`]; a failure is logged and said in words.
async fn count(env: Environment, db: &Database) -> Result<TableCounts, String> {
    match tokio::time::timeout(READ_TIMEOUT, target::table_counts(db)).await {
        Ok(Ok(counts)) => Ok(counts),
        Ok(Err(e)) => {
            tracing::warn!(environment = %env, error = %e, "cannot read target database");
            Err("the database could not be read; the server log has the cause".to_owned())
        }
        Err(_) => Err(format!("the database did not answer within {} s", READ_TIMEOUT.as_secs())),
    }
}

/// Reads every environment's figures. A database that fails or times out becomes an error on
/// that environment's panel; the others are still shown.
pub async fn read(control: &Database, targets: &Targets, d_day: Option<Day>) -> Overview {
    let mut environments = Vec::new();
    // every environment's newest completed backfill, in rollout order: the rates forecasts use
    let mut completed = Vec::new();
    for env in Environment::ALL {
        match measured(control, env, None).await {
            Ok(Some(m)) => completed.push(m),
            Ok(None) => {}
            Err(e) => tracing::warn!(environment = %env, error = %e, "cannot read a measured backfill rate"),
        }
    }
    for (env, target) in targets.0.iter() {
        let db = &target.db;
        // viewers woken by the same change share one count
        let counts = target.counts.read(|| count(env, db)).await;
        let enable_sti = match control::flag(control, env, ENABLE_STI).await {
            Ok(flag) => flag,
            Err(e) => {
                tracing::warn!(environment = %env, error = %e, "cannot read flag");
                None
            }
        };
        let last_run = match last_run(control, env).await {
            Ok(run) => run,
            Err(e) => {
                tracing::warn!(environment = %env, error = %e, "cannot read the newest run");
                None
            }
        };
        let phases = match super::rollout::phases(control, env).await {
            Ok(phases) => phases,
            Err(e) => {
                tracing::warn!(environment = %env, error = %e, "cannot read the rollout's facts");
                Vec::new()
            }
        };
        // a backfilled environment has nothing to forecast: its rows left are rejected ones
        let backfilled = phases.iter().any(|(p, s)| *p == Phase::Backfill && s.is_done());
        let forecast = match backfilled {
            true => None,
            false => forecast(control, env, counts.as_ref().ok(), last_run.as_ref(), &completed).await,
        };
        environments.push(EnvironmentStatus {
            environment: env,
            database: db.url().describe(),
            counts,
            enable_sti,
            last_run,
            phases,
            forecast,
        });
    }
    let phases: Vec<_> = environments.iter().map(|e| (e.environment, e.phases.clone())).collect();
    let timeline = super::timeline::read(control, d_day, &phases).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read the timeline");
        "the timeline could not be read; the server log has the cause".to_owned()
    });
    let mut incidents = Vec::new();
    for env in Environment::ALL {
        let open = match super::live::capture(control, env).await {
            Ok(capture) => super::live::incident(control, env, capture.as_ref()).await,
            Err(e) => Err(e),
        };
        match open {
            Ok(incident) => incidents.extend(incident),
            Err(e) => tracing::warn!(environment = %env, error = %e, "cannot read the open emergency stop"),
        }
    }
    Overview { environments, timeline, read_at: super::now_rfc3339(), read_at_ms: super::now_ms(), incidents }
}

/// The newest run of `env` from the control database's mirror, as the pages show every run.
/// The forecast of `env`'s backfill: its active backfill's, at its own measured rate (or the
/// nearest one before it while it has none) and pacing; before a run, its rows left at the
/// nearest measured rate with that run's pacing.
async fn forecast(
    control: &Database,
    env: Environment,
    counts: Option<&TableCounts>,
    last_run: Option<&RunView>,
    completed: &[Measured],
) -> Option<Forecast> {
    let basis = basis_for(env, completed);
    match last_run.filter(|r| r.is_active() && r.kind == RunKind::Backfill) {
        Some(run) => {
            let own = measured(control, env, Some(run.id))
                .await
                .ok()
                .flatten()
                .filter(|m| m.rows_per_second().is_some());
            let rows = run
                .rows_expected
                .map_or_else(|| counts.map_or(0, TableCounts::remaining), |e| e - run.rows_read);
            forecast::forecast(rows.max(0), own.as_ref().or(basis)?, run.chunk_size, run.pause_ms)
        }
        None => {
            let rows = counts?.remaining();
            let basis = basis?;
            (rows > 0).then(|| forecast::forecast(rows, basis, basis.chunk_size, basis.pause_ms)).flatten()
        }
    }
}

/// What a backfill of `env` measured: run `run_id`'s chunks, or without one the newest completed
/// backfill's.
/// A run that mostly skipped rows copied before it (a re-run) reads far faster than a copy: only
/// a backfill that created at least half of what it read measures what a backfill costs.
async fn measured(
    control: &Database,
    env: Environment,
    run_id: Option<i64>,
) -> Result<Option<Measured>, sqlx::Error> {
    let row = sqlx::query(
        "select r.run_id, r.chunk_size, r.pause_ms,
                cast(coalesce(sum(c.rows_read), 0) as bigint) as rows_read,
                cast(coalesce(sum(c.duration_ms), 0) as bigint) as copy_ms
         from runs r join run_chunks c on c.environment = r.environment and c.run_id = r.run_id
         where r.environment = $1
           and r.run_id = coalesce($2, (select max(n.run_id) from runs n
                                         where n.environment = $1 and n.kind = 'backfill' and n.state = 'completed'
                                           and 2 * (n.school_created + n.self_study_created) > n.rows_read))
         group by r.run_id, r.chunk_size, r.pause_ms",
    )
    .bind(env.as_str())
    .bind(run_id)
    .fetch_optional(control.pool())
    .await?;
    row.map(|row| {
        Ok(Measured {
            environment: env,
            run_id: row.try_get("run_id")?,
            rows: row.try_get("rows_read")?,
            copy_ms: row.try_get("copy_ms")?,
            chunk_size: row.try_get("chunk_size")?,
            pause_ms: row.try_get("pause_ms")?,
        })
    })
    .transpose()
}

async fn last_run(control: &Database, env: Environment) -> Result<Option<RunView>, sqlx::Error> {
    Ok(super::live::history(control, env, 1).await?.into_iter().next())
}
