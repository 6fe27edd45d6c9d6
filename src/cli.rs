//! (ssr) The `sti-rollout` command line: every subcommand, and how failures are reported.

mod api_keys;
mod backfill;
mod bench;
mod checklist;
mod migrate;
mod progress;
mod users;

use crate::db::seed::{SeedError, SeedMode, MAX_ROWS};
use crate::db::{control, Database, Schema};
use crate::domain::environment::Environment;
use crate::domain::format::format_count;
use crate::domain::pacing::{Pacing, DEFAULT_CHUNK, MAX_CHUNK, MAX_PAUSE_MS};
use crate::domain::run::RunKind;
use crate::engine::runs::DEFAULT_LEASE_MS;
use crate::engine::{EngineError, ErrorKind};
use crate::server::config::{Config, ConfigError};
use crate::server::startup::{seed_with_progress, Application, StartupError};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
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
    Serve {
        /// Address to listen on.
        #[arg(long, env = "STI_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
    },
    /// Generate demo legacy rows into one environment's target database.
    Seed {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        /// How many legacy rows to generate.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_ROWS))]
        rows: i64,
        /// Add rows after the existing ones instead of refusing a table that has rows.
        #[arg(long)]
        append: bool,
    },
    /// Apply pending migrations to the control database and the demo targets, and check every
    /// configured target; with --env, say what a configured target needs and change it.
    Migrate {
        /// Bring this environment's configured target to what the engine needs: says what it
        /// will change, then changes it.
        #[arg(long)]
        env: Option<Environment>,
        /// Only say what --env would change.
        #[arg(long, requires = "env")]
        plan: bool,
        /// How long each migration may wait for a lock before it gives up, changing nothing.
        #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        lock_timeout_ms: u64,
    },
    /// Print the projects API's OpenAPI description (what docs/openapi_v2.yaml holds).
    Openapi,
    /// Copy legacy rows into the subtype tables in keyset chunks; resumes the environment's
    /// interrupted run when there is one.
    Backfill {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        /// Ids per chunk.
        #[arg(long, default_value_t = DEFAULT_CHUNK, value_parser = clap::value_parser!(i64).range(1..=MAX_CHUNK))]
        chunk: i64,
        /// Walk the same chunks read-only and report what a live run would do.
        #[arg(long)]
        dry_run: bool,
        /// Start a new run after this legacy id (the legacy script took an offset instead).
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
        resume_from: Option<i64>,
        /// After a failed run, start over from the first id instead of after its checkpoint.
        #[arg(long, conflicts_with = "resume_from")]
        restart: bool,
        /// Pause between chunks, in milliseconds.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..=MAX_PAUSE_MS))]
        pause_ms: i64,
        /// Adapt the chunk size towards chunks of this many milliseconds.
        #[arg(long, value_parser = clap::value_parser!(i64).range(10..=60_000))]
        target_chunk_ms: Option<i64>,
        /// Start although the environment's gate is closed, for this reason (audited).
        #[arg(long, value_name = "REASON")]
        override_gate: Option<String>,
        #[command(flatten)]
        common: RunFlags,
    },
    /// Delete the subtype rows backfill runs created (refused while ENABLE_STI is on).
    Rollback {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Ids per chunk.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=MAX_CHUNK))]
        chunk: i64,
        /// After a failed rollback, start over from the first id instead of after its checkpoint.
        #[arg(long)]
        restart: bool,
        #[command(flatten)]
        common: RunFlags,
    },
    /// Re-copy exactly the ids the newest verification found different, as a fenced, resumable
    /// run; then verify again.
    Reconcile {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        /// List the ids that would be re-copied; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Ids per chunk.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=MAX_CHUNK))]
        chunk: i64,
        #[command(flatten)]
        common: RunFlags,
    },
    /// Compare legacy rows with subtype rows range by range; exit 1 on any mismatch.
    Verify {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Measure the engine against a single `insert … select` of the same rows, on a fresh
    /// database (SQLite in a temporary folder, or a new database on --postgres).
    Bench {
        /// Legacy rows to generate.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(1000..=50_000_000))]
        rows: i64,
        /// Rounds; ratios are medians over them.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
        rounds: u64,
        /// The engine's chunk size.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=MAX_CHUNK))]
        chunk: i64,
        /// A PostgreSQL server URL (a superuser's) to benchmark on instead of SQLite.
        #[arg(long, env = "STI_BENCH_POSTGRES_URL")]
        postgres: Option<String>,
        /// Pages sampled to extrapolate the OFFSET/LIMIT method.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
        offset_samples: i64,
        /// Single-row updates timed per round with the change capture off and on (0: none).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
        writes: i64,
    },
    /// Ask the environment's active run to pause, resume or cancel, or change its pacing; the
    /// runner acts at its next chunk boundary.
    Control {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        #[command(subcommand)]
        action: ControlAction,
    },
    /// The post-rollout checklist: its template (add, retire) and each environment's sign-offs.
    Checklist {
        #[command(subcommand)]
        action: checklist::ChecklistAction,
    },
    /// The rollout's calendar: each environment's planned window around D-day against what
    /// happened; --set or --clear changes the D-day (audited).
    Timeline {
        /// The new D-day.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day, conflicts_with = "clear")]
        set: Option<crate::domain::calendar::Day>,
        /// Forget the D-day set here; the config file's applies again.
        #[arg(long)]
        clear: bool,
        /// Why it changed (goes to the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Turn ENABLE_STI on or off in one environment, at once for every application (audited).
    /// On needs the environment verified, unless an admin's reason overrides the gate.
    Flag {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// Why (goes to the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// Turn it on although the environment is not verified, for this written reason (audited).
        #[arg(long, value_name = "REASON")]
        override_gate: Option<String>,
    },
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
    Runs {
        /// The environment: dev, staging or prod.
        #[arg(long)]
        env: Environment,
        /// How many runs to show.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        /// Print the runs as JSON.
        #[arg(long)]
        json: bool,
    },
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

/// Flags every run command has.
#[derive(clap::Args, Debug)]
pub struct RunFlags {
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Seconds a runner's lease lasts without renewal; a dead runner's run can be taken over after it.
    #[arg(long, env = "STI_LEASE_SECONDS", default_value_t = DEFAULT_LEASE_MS / 1000, value_parser = clap::value_parser!(i64).range(1..=3600))]
    lease_seconds: i64,
    /// When another runner holds the environment's active run, wait (with a countdown) until
    /// its lease runs out or the run ends, instead of failing.
    #[arg(long)]
    wait: bool,
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

fn parse_day(text: &str) -> Result<crate::domain::calendar::Day, String> {
    crate::domain::calendar::Day::parse(text)
}

/// `sti-rollout timeline`: changes the D-day when asked, then prints the calendar.
async fn timeline(
    control: &Database,
    configured: Option<crate::domain::calendar::Day>,
    set: Option<crate::domain::calendar::Day>,
    clear: bool,
    reason: Option<&str>,
) -> Result<(), CliError> {
    let db_error = |e: sqlx::Error| CliError::User(format!("the timeline cannot be read: {e}"));
    if set.is_some() || clear {
        let before =
            crate::db::timeline::change_d_day(control, set, &actor(), reason).await.map_err(db_error)?;
        let show = |d: Option<crate::domain::calendar::Day>| d.map_or("none".to_owned(), |d| d.to_string());
        eprintln!("D-day: {} → {}", show(before), show(set));
    }
    let mut phases = Vec::new();
    for env in Environment::ALL {
        phases.push((env, crate::db::rollout::phases(control, env).await.map_err(db_error)?));
    }
    let timeline = crate::db::timeline::read(control, configured, &phases).await.map_err(db_error)?;
    let Some(d_day) = timeline.d_day else {
        println!("No D-day is set: use --set YYYY-MM-DD, or d_day in the config file.");
        return Ok(());
    };
    println!("D-day {d_day} ({}); today {}", timeline.source, timeline.today);
    for e in &timeline.environments {
        println!(
            "{:<8} planned {} ({} → {})  actual {:<26} {}",
            e.environment.as_str(),
            crate::domain::timeline::window_label(e.environment),
            e.planned_start,
            e.planned_end,
            e.actual.describe(|d| d.to_string()),
            e.schedule.describe()
        );
    }
    Ok(())
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
    match cli.command {
        Some(Command::Serve { addr }) => serve(&config, addr).await,
        None => serve(&config, default_addr()).await,
        Some(Command::Seed { env, rows, append }) => seed(&config, env, rows, append).await,
        Some(Command::Backfill {
            env,
            chunk,
            dry_run,
            resume_from,
            restart,
            pause_ms,
            target_chunk_ms,
            override_gate,
            common,
        }) => {
            let pacing = Pacing::parse(chunk, pause_ms, target_chunk_ms)
                .map_err(|e| CliError::Engine { env, source: e.into() })?;
            let (control, target) = open_control_and_target(&config, env).await?;
            let resume_from = if restart { Some(0) } else { resume_from };
            let options = run_options(&config, env, pacing, resume_from, &common, override_gate);
            if dry_run {
                backfill::backfill_dry_run(&control, &target, options).await
            } else {
                backfill::run(&control, &target, RunKind::Backfill, options).await
            }
        }
        Some(Command::Rollback { env, dry_run, chunk, restart, common }) => {
            let pacing =
                Pacing::parse(chunk, 0, None).map_err(|e| CliError::Engine { env, source: e.into() })?;
            let (control, target) = open_control_and_target(&config, env).await?;
            if dry_run {
                backfill::rollback_dry_run(&control, &target, env, common.json).await
            } else {
                let options = run_options(&config, env, pacing, restart.then_some(0), &common, None);
                backfill::run(&control, &target, RunKind::Rollback, options).await
            }
        }
        Some(Command::Reconcile { env, dry_run, chunk, common }) => {
            let pacing =
                Pacing::parse(chunk, 0, None).map_err(|e| CliError::Engine { env, source: e.into() })?;
            let (control, target) = open_control_and_target(&config, env).await?;
            if dry_run {
                backfill::reconcile_dry_run(&control, &target, env, common.json).await
            } else {
                let options = run_options(&config, env, pacing, None, &common, None);
                backfill::run(&control, &target, RunKind::Reconcile, options).await
            }
        }
        Some(Command::Verify { env, json }) => {
            let (control, target) = open_control_and_target(&config, env).await?;
            backfill::verify(&control, &target, env, json).await
        }
        Some(Command::Bench { rows, rounds, chunk, postgres, offset_samples, writes }) => {
            let rounds = usize::try_from(rounds).unwrap_or(1);
            bench::bench(bench::BenchOptions {
                postgres_url: postgres,
                rows,
                rounds,
                chunk,
                offset_samples,
                writes,
            })
            .await
        }
        Some(Command::Control { env, action }) => {
            let (control, target) = open_control_and_target(&config, env).await?;
            backfill::control(&control, &target, env, action).await
        }
        Some(Command::Timeline { set, clear, reason }) => {
            let control = open_control(&config).await?;
            timeline(&control, config.d_day, set, clear, reason.as_deref()).await
        }
        Some(Command::Checklist { action }) => {
            let control = open_control(&config).await?;
            checklist::run(&control, action).await
        }
        Some(Command::Flag { env, state, reason, override_gate }) => {
            let control = open_control(&config).await?;
            let on = state == "on";
            crate::engine::operate::set_flag(
                &control,
                env,
                &actor(),
                on,
                reason.as_deref(),
                override_gate.as_deref(),
            )
            .await
            .map_err(|source| CliError::Engine { env, source })?;
            println!("{env}: ENABLE_STI {state}");
            Ok(())
        }
        Some(Command::Apikey { action }) => {
            let control = open_control(&config).await?;
            api_keys::run(&control, action).await
        }
        Some(Command::User { action }) => {
            let control = open_control(&config).await?;
            users::run(&control, action).await
        }
        Some(Command::Runs { env, limit, json }) => {
            let (_, target) = open_control_and_target(&config, env).await?;
            backfill::list(&target, env, limit, json).await
        }
        // printed before the configuration is read
        Some(Command::Openapi) => Ok(()),
        Some(Command::Migrate { env, plan, lock_timeout_ms }) => {
            let control = open_control(&config).await?;
            println!("control: {} is up to date", control.url().describe());
            let lock_timeout = std::time::Duration::from_millis(lock_timeout_ms);
            match env {
                Some(env) => migrate::one(&config, env, plan, lock_timeout).await,
                None => migrate::all(&config).await,
            }
        }
    }
}

async fn serve(config: &Config, addr: SocketAddr) -> Result<(), CliError> {
    let app = Application::build(config, addr).await?;
    println!("STI Rollout Console is serving at http://{}:{}/", display_host(addr), app.port());
    app.run_until_stopped().await.map_err(CliError::Serve)
}

/// `STI_ADDR`, else the `LEPTOS_SITE_ADDR` cargo-leptos sets, else 127.0.0.1:3000.
fn default_addr() -> SocketAddr {
    ["STI_ADDR", "LEPTOS_SITE_ADDR"]
        .iter()
        .find_map(|var| std::env::var(var).ok()?.parse().ok())
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3000)))
}

async fn seed(config: &Config, env: Environment, rows: i64, append: bool) -> Result<(), CliError> {
    let (control, target) = open_control_and_target(config, env).await?;
    let mode = if append { SeedMode::Append } else { SeedMode::Fresh };
    let seed_error = |source| CliError::Seed { env, source };
    let record = seed_with_progress(&target, env, rows, mode).await.map_err(seed_error)?;
    control::record_seed(&control, env, record).await.map_err(|e| seed_error(SeedError::Db(e)))?;
    println!(
        "{env}: {} legacy rows generated (ids {}–{}) in {:.1} s",
        format_count(record.rows),
        record.first_id,
        record.last_id,
        record.duration_ms as f64 / 1000.0
    );
    Ok(())
}

/// The control database, migrated, without touching any target.
async fn open_control(config: &Config) -> Result<Database, StartupError> {
    let database_error = |source| StartupError::Database { what: "control".into(), source };
    if config.uses_data_dir() {
        crate::server::startup::create_private_dir(&config.data_dir)
            .map_err(|source| StartupError::DataDir { path: config.data_dir.clone(), source })?;
    }
    let control = Database::open(&config.control, Schema::Control).await.map_err(database_error)?;
    control::register_environments(&control).await.map_err(database_error)?;
    Ok(control)
}

/// The control database and one environment's target, without touching the other targets.
/// What `backfill`, `rollback` and `reconcile` run with: their flags and `env`'s policy.
fn run_options(
    config: &Config,
    env: Environment,
    pacing: Pacing,
    resume_from: Option<i64>,
    common: &RunFlags,
    override_gate: Option<String>,
) -> backfill::RunOptions {
    backfill::RunOptions {
        env,
        pacing,
        resume_from,
        lease_ms: common.lease_seconds * 1000,
        wait: common.wait,
        json: common.json,
        override_gate,
        policy: std::sync::Arc::new(config.targets[env].policy.clone()),
    }
}

async fn open_control_and_target(
    config: &Config,
    env: Environment,
) -> Result<(Database, Database), StartupError> {
    let control = open_control(config).await?;
    let target = crate::server::startup::open_environment(&control, env, &config.targets[env]).await?;
    Ok((control, target))
}

fn display_host(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

/// Logs to stderr; `STI_LOG` filters (default `info`; sqlx's slow-statement warnings are off,
/// since a backfill's statements are long by design).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
