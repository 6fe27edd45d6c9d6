//! `control`: ask the environment's active run to pause, resume or cancel, or change its
//! pacing; the runner acts at its next chunk boundary.

use super::CliError;
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::pacing::Pacing;
use crate::domain::pacing::{MAX_CHUNK, MAX_PAUSE_MS};
use crate::domain::run::RunRequest;
use crate::engine::operate;
use crate::server::config::Config;
use crate::server::startup::open_control_and_target;
use clap::Subcommand;

#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    /// The environment: dev, staging or prod.
    #[arg(long)]
    env: Environment,
    #[command(subcommand)]
    action: ControlAction,
}

/// What `control` asks of the active run.
#[derive(Subcommand, Debug)]
pub enum ControlAction {
    /// Stop after the current chunk; the run keeps its lease.
    Pause,
    /// Continue a paused run.
    Resume,
    /// End the run after the current chunk; what was committed stays.
    Cancel,
    /// Change the chunk size and the pause between chunks.
    Pace {
        /// Ids per chunk.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_CHUNK))]
        chunk: i64,
        /// Pause between chunks, in milliseconds.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..=MAX_PAUSE_MS))]
        pause_ms: i64,
        /// Adapt the chunk size towards chunks of this many milliseconds.
        #[arg(long, value_parser = clap::value_parser!(i64).range(10..=60_000))]
        target_chunk_ms: Option<i64>,
    },
}

pub async fn run(config: &Config, ControlArgs { env, action }: ControlArgs) -> Result<(), CliError> {
    let (control, target) = open_control_and_target(config, env).await?;
    ask(&control, &target, env, action).await
}

async fn ask(
    control: &Database,
    target: &Database,
    env: Environment,
    action: ControlAction,
) -> Result<(), CliError> {
    let engine_error = |source| CliError::Engine { env, source };
    let actor = super::actor();
    let ask = |request| operate::request(control, target, env, &actor, None, request);
    let updated = match action {
        ControlAction::Pause => ask(RunRequest::Pause).await,
        ControlAction::Resume => ask(RunRequest::Resume).await,
        ControlAction::Cancel => ask(RunRequest::Cancel).await,
        ControlAction::Pace { chunk, pause_ms, target_chunk_ms } => {
            let pacing =
                Pacing::parse(chunk, pause_ms, target_chunk_ms).map_err(|e| engine_error(e.into()))?;
            operate::set_pacing(control, target, env, &actor, None, pacing).await
        }
    }
    .map_err(|source| match source {
        crate::engine::EngineError::NoActiveRun => CliError::NoActiveRun { env },
        source => engine_error(source),
    })?;
    match updated.requested {
        Some(request) => println!(
            "{env}: run #{} ({}) will {} at its next chunk boundary",
            updated.id,
            updated.state,
            request.as_str()
        ),
        None => println!(
            "{env}: run #{} ({}) now goes in chunks of {} with {} ms between them",
            updated.id, updated.state, updated.pacing.chunk_size, updated.pacing.pause_ms
        ),
    }
    Ok(())
}
