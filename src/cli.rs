//! (ssr) The `sti-rollout` command line: the subcommands, and how failures are reported. Each
//! subcommand's flags and handler live in its own module; this file only names them.

mod api_keys;
mod backfill;
mod bench;
mod bench_scale;
mod checklist;
mod control;
mod dry_run;
mod migrate;
mod progress;
mod report;
mod rollout;
mod serve;
mod users;
mod worker;

use crate::db::seed::SeedError;
use crate::domain::environment::Environment;
use crate::engine::{EngineError, ErrorKind};
use crate::server::config::{Config, ConfigError};
use crate::server::startup::{open_control, StartupError};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Takes the projects → school/self-study split through dev, staging and prod safely.
#[derive(Parser, Debug)]
#[command(name = "sti-rollout", version)]
pub struct Cli {
    /// Folder for the default SQLite databases (control.db, dev.db, staging.db, prod.db).
    #[arg(long, global = true, env = "STI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// TOML file naming the control database and each environment's target database.
    #[arg(long, global = true, env = "STI_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do; without one, `serve` (so `cargo leptos serve` works too).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the web console; migrates, and seeds demo data the first time.
    Serve(serve::ServeArgs),
    /// Generate demo legacy rows into one environment's target database.
    Seed(serve::SeedArgs),
    /// Apply pending migrations to the control database and the demo targets, and check every
    /// configured target; with --env, say what a configured target needs and change it.
    Migrate(migrate::MigrateArgs),
    /// Print the projects API's OpenAPI description (what docs/openapi_v2.yaml holds).
    Openapi,
    /// Copy legacy rows into the subtype tables in keyset chunks; resumes the environment's
    /// interrupted run when there is one.
    Backfill(backfill::BackfillArgs),
    /// Delete the subtype rows backfill runs created (refused while ENABLE_STI is on).
    Rollback(backfill::RollbackArgs),
    /// Re-copy exactly the ids the newest verification found different, as a fenced, resumable
    /// run; then verify again.
    Reconcile(backfill::ReconcileArgs),
    /// Compare legacy rows with subtype rows range by range; exit 1 on any mismatch.
    Verify(report::VerifyArgs),
    /// Measure the engine against a single `insert … select` of the same rows, on a fresh
    /// database (SQLite in a temporary folder, or a new database on --postgres).
    Bench(bench::BenchArgs),
    /// Ask the environment's active run to pause, resume or cancel, or change its pacing; the
    /// runner acts at its next chunk boundary.
    Control(control::ControlArgs),
    /// The post-rollout checklist: its template (add, retire) and each environment's sign-offs.
    Checklist {
        #[command(subcommand)]
        action: checklist::ChecklistAction,
    },
    /// The rollout's calendar: each environment's planned window around D-day against what
    /// happened; --set or --clear changes the D-day (audited).
    Timeline(rollout::TimelineArgs),
    /// Turn ENABLE_STI on or off in one environment, at once for every application (audited).
    /// On needs the environment verified, unless an admin's reason overrides the gate.
    Flag(rollout::FlagArgs),
    /// Manage the API keys applications use.
    Apikey {
        #[command(subcommand)]
        action: api_keys::ApiKeyAction,
    },
    /// Manage the people who use the console.
    User {
        #[command(subcommand)]
        action: users::UserAction,
    },
    /// List an environment's backfill and rollback runs, newest first.
    Runs(report::RunsArgs),
    /// List the target database's sessions that hold locks on the rollout's tables (what a
    /// waiting run may wait for), the ones blocking the engine first; on SQLite, what to check
    /// instead.
    Blockers(report::BlockersArgs),
    /// Join the environment's active run in slices with this machine's workers (a backfill
    /// started with --workers N on PostgreSQL), until no slice is left.
    Worker(worker::WorkerArgs),
}

/// What can go wrong in a subcommand, in one sentence each.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("seed {env}: {source}")]
    Seed { env: Environment, source: SeedError },
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
    #[error("{env}: {source}")]
    Engine { env: Environment, source: EngineError },
    #[error("{env}: run #{run_id} ended {state}")]
    Ended { env: Environment, run_id: i64, state: String },
    #[error("bench: {0}")]
    Bench(String),
    #[error("{0}")]
    User(String),
    #[error("{env}: no run is active")]
    NoActiveRun { env: Environment },
    #[error("{env}: {source}")]
    Migrate { env: Environment, source: crate::db::target_schema::MigrateError },
    #[error("{env}: verification found {ranges} mismatching ranges")]
    Mismatch { env: Environment, ranges: usize },
}

impl CliError {
    /// 2 for configuration the command could not start with (nothing was touched), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Startup(_) => 2,
            Self::Engine { source, .. } if source.kind() == ErrorKind::BadInput => 2,
            _ => 1,
        }
    }
}

/// Who acts from the command line, as the audit log and the run ledger name them.
pub fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// Runs one subcommand; failures are printed as one line on stderr.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn execute(cli: Cli) -> Result<(), CliError> {
    if let Some(Command::Openapi) = cli.command {
        print!("{}", crate::server::projects::openapi_yaml());
        return Ok(());
    }
    let config = Config::load(&cli.data_dir, cli.config.as_deref())?;
    let config = &config;
    match cli.command {
        None => serve::serve(config, serve::ServeArgs::from_environment()).await,
        Some(Command::Serve(args)) => serve::serve(config, args).await,
        Some(Command::Seed(args)) => serve::seed(config, args).await,
        // printed before the configuration is read
        Some(Command::Openapi) => Ok(()),
        Some(Command::Migrate(args)) => migrate::run(config, args).await,
        Some(Command::Backfill(args)) => backfill::backfill(config, args).await,
        Some(Command::Rollback(args)) => backfill::rollback(config, args).await,
        Some(Command::Reconcile(args)) => backfill::reconcile(config, args).await,
        Some(Command::Verify(args)) => report::verify(config, args).await,
        Some(Command::Runs(args)) => report::runs(config, args).await,
        Some(Command::Blockers(args)) => report::blockers(config, args).await,
        Some(Command::Worker(args)) => worker::run(config, args).await,
        Some(Command::Bench(args)) => bench::bench(args.into()).await,
        Some(Command::Control(args)) => control::run(config, args).await,
        Some(Command::Timeline(args)) => rollout::timeline(config, args).await,
        Some(Command::Flag(args)) => rollout::flag(config, args).await,
        Some(Command::Checklist { action }) => checklist::run(&open_control(config).await?, action).await,
        Some(Command::Apikey { action }) => api_keys::run(&open_control(config).await?, action).await,
        Some(Command::User { action }) => users::run(&open_control(config).await?, action).await,
    }
}

/// Logs to stderr; `STI_LOG` filters (default `info`; sqlx's slow-statement warnings are off,
/// since a backfill's statements are long by design).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
