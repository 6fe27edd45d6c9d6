//! Reading what the overview page shows: counts from each target database, flags from control.

use super::control::{self, ENABLE_STI};
use super::joined_read::JoinedRead;
use super::pool::Database;
use super::target;
use crate::domain::calendar::Day;
use crate::domain::environment::{Environment, PerEnv};
use crate::domain::live::RunView;
use crate::domain::overview::{EnvironmentStatus, Overview, TableCounts};
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
        environments.push(EnvironmentStatus {
            environment: env,
            database: db.url().describe(),
            counts,
            enable_sti,
            last_run,
            phases,
        });
    }
    let phases: Vec<_> = environments.iter().map(|e| (e.environment, e.phases.clone())).collect();
    let timeline = super::timeline::read(control, d_day, &phases).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read the timeline");
        "the timeline could not be read; the server log has the cause".to_owned()
    });
    Overview { environments, timeline, read_at: super::now_rfc3339(), read_at_ms: super::now_ms() }
}

/// The newest run of `env` from the control database's mirror, as the pages show every run.
async fn last_run(control: &Database, env: Environment) -> Result<Option<RunView>, sqlx::Error> {
    Ok(super::live::history(control, env, 1).await?.into_iter().next())
}
