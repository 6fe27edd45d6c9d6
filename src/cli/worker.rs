//! `sti-rollout worker --env E`: this machine's workers join the environment's active run in
//! slices (started with `--workers N` on PostgreSQL, from the console or `backfill`) and copy
//! slices until none is left; the run's holder ends the run.

use super::CliError;
use crate::domain::environment::Environment;
use crate::domain::format::format_count;
use crate::domain::pacing::MAX_WORKERS;
use crate::domain::run::RunState;
use crate::engine::runs;
use crate::engine::{workers, EngineError};
use crate::server::config::Config;
use crate::server::startup::open_control_and_target;
use std::time::Duration;

/// `worker`'s flags.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// The environment: dev, staging or prod.
    #[arg(long)]
    env: Environment,
    /// Workers in this process (default: as many as the run's holder starts).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_WORKERS))]
    workers: Option<i64>,
    /// Wait for a run in slices to become active instead of failing when there is none.
    #[arg(long)]
    wait: bool,
}

pub async fn run(config: &Config, WorkerArgs { env, workers, wait }: WorkerArgs) -> Result<(), CliError> {
    let (control, target) = open_control_and_target(config, env).await?;
    let fail = |source: EngineError| CliError::Engine { env, source };
    let run = loop {
        match runs::active(&target).await.map_err(fail)? {
            Some(run) if run.workers > 1 && run.state == RunState::Running => break run,
            Some(run) if run.workers == 1 && !wait => {
                return Err(fail(EngineError::NotSupported(format!(
                "run #{} runs as one loop (it was started with 1 worker); start a backfill with --workers N \
                     to spread it over machines",
                run.id
            ))))
            }
            None if !wait => return Err(CliError::NoActiveRun { env }),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let count = workers.unwrap_or(run.workers);
    let policy = std::sync::Arc::new(config.targets[env].policy.clone());
    let crew = workers::Crew::joining(&target, &control, env, run.id, policy);
    eprintln!("{env}: {count} workers join run #{} ({})", run.id, crew.owner);
    let (mut chunks, mut rows, mut failed) = (0, 0, None);
    for handle in workers::join(&crew, count) {
        match handle.await {
            Ok(Ok(tally)) => {
                chunks += tally.chunks;
                rows += tally.rows_read;
            }
            Ok(Err(error)) => failed = Some(error),
            Err(error) => failed = Some(EngineError::Corrupt(format!("a worker task failed: {error}"))),
        }
    }
    let run = runs::get(&target, run.id).await.map_err(fail)?;
    println!(
        "{env}: this machine's workers copied {} rows in {} chunks of run #{}, which is {}",
        format_count(rows),
        format_count(chunks),
        run.id,
        run.state
    );
    match failed {
        Some(error) => Err(fail(error)),
        None => Ok(()),
    }
}
