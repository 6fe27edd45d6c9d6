//! The run subcommands — `backfill`, `rollback` and `reconcile` — with their flags: each begins
//! (or takes over) a run and drives it to its end with a progress line.

use super::progress::Reporter;
use super::CliError;
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::format::format_count;
use crate::domain::pacing::Pacing;
use crate::domain::pacing::{DEFAULT_CHUNK, MAX_CHUNK, MAX_PAUSE_MS, MAX_WORKERS};
use crate::domain::run::RunKind;
use crate::engine::backfill::{self, Start};
use crate::engine::operate;
use crate::engine::runs::DEFAULT_LEASE_MS;
use crate::engine::runs::{Held, RunRecord};
use crate::engine::EngineError;
use crate::server::config::Config;
use crate::server::startup::open_control_and_target;
use serde_json::json;
use std::time::Instant;

/// `backfill`'s flags.
#[derive(clap::Args, Debug)]
pub struct BackfillArgs {
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
    /// Workers in this process (PostgreSQL): more than 1 cuts the range into slices that they,
    /// every console replica and `sti-rollout worker` claim.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=MAX_WORKERS))]
    workers: i64,
    /// PostgreSQL: drop the subtype tables' foreign keys to projects for the copy and add them
    /// back, validated once, when it completes (a quarter of the cost; see the README).
    #[arg(long)]
    defer_fk_validation: bool,
    #[command(flatten)]
    common: RunFlags,
}

/// `rollback`'s flags.
#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
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
}

/// `reconcile`'s flags.
#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
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

pub async fn backfill(config: &Config, args: BackfillArgs) -> Result<(), CliError> {
    let BackfillArgs {
        env,
        chunk,
        dry_run,
        resume_from,
        restart,
        pause_ms,
        target_chunk_ms,
        override_gate,
        workers,
        defer_fk_validation,
        common,
    } = args;
    let pacing = Pacing::parse(chunk, pause_ms, target_chunk_ms)
        .map_err(|e| CliError::Engine { env, source: e.into() })?;
    let (control, target) = open_control_and_target(config, env).await?;
    let resume_from = if restart { Some(0) } else { resume_from };
    let options = RunOptions {
        workers,
        defer_fks: defer_fk_validation,
        ..run_options(config, env, pacing, resume_from, &common, override_gate)
    };
    if dry_run {
        super::dry_run::backfill(&control, &target, options).await
    } else {
        run(&control, &target, RunKind::Backfill, options).await
    }
}

pub async fn rollback(
    config: &Config,
    RollbackArgs { env, dry_run, chunk, restart, common }: RollbackArgs,
) -> Result<(), CliError> {
    let pacing = Pacing::parse(chunk, 0, None).map_err(|e| CliError::Engine { env, source: e.into() })?;
    let (control, target) = open_control_and_target(config, env).await?;
    if dry_run {
        super::dry_run::rollback(&control, &target, env, common.json).await
    } else {
        let options = run_options(config, env, pacing, restart.then_some(0), &common, None);
        run(&control, &target, RunKind::Rollback, options).await
    }
}

pub async fn reconcile(
    config: &Config,
    ReconcileArgs { env, dry_run, chunk, common }: ReconcileArgs,
) -> Result<(), CliError> {
    let pacing = Pacing::parse(chunk, 0, None).map_err(|e| CliError::Engine { env, source: e.into() })?;
    let (control, target) = open_control_and_target(config, env).await?;
    if dry_run {
        super::dry_run::reconcile(&control, &target, env, common.json).await
    } else {
        let options = run_options(config, env, pacing, None, &common, None);
        run(&control, &target, RunKind::Reconcile, options).await
    }
}

/// What `backfill`, `rollback` and `reconcile` run with: their flags and `env`'s policy.
fn run_options(
    config: &Config,
    env: Environment,
    pacing: Pacing,
    resume_from: Option<i64>,
    common: &RunFlags,
    override_gate: Option<String>,
) -> RunOptions {
    RunOptions {
        env,
        pacing,
        resume_from,
        lease_ms: common.lease_seconds * 1000,
        wait: common.wait,
        json: common.json,
        override_gate,
        policy: std::sync::Arc::new(config.targets[env].policy.clone()),
        workers: 1,
        defer_fks: false,
    }
}

/// The options `backfill` and `rollback` share.
pub struct RunOptions {
    pub env: Environment,
    pub pacing: Pacing,
    pub resume_from: Option<i64>,
    pub lease_ms: i64,
    /// Wait for a held run's lease instead of failing.
    pub wait: bool,
    pub json: bool,
    /// Start although the gate is closed, for this reason.
    pub override_gate: Option<String>,
    /// The environment's configured policy.
    pub policy: std::sync::Arc<crate::domain::policy::Policy>,
    /// Workers in this process.
    pub workers: i64,
    /// Deferred validation of the subtype tables' foreign keys.
    pub defer_fks: bool,
}

fn start(options: &RunOptions) -> Start {
    Start {
        env: options.env,
        started_by: super::actor(),
        pacing: options.pacing,
        resume_from: options.resume_from,
        lease_ms: options.lease_ms,
        policy: options.policy.clone(),
        workers: options.workers,
        defer_fks: options.defer_fks,
    }
}

/// Begins a run with `begin`; with `--wait`, a run held by another runner is waited for — its
/// lease counted down on stderr — and `begin` tried again each second, until the run is ours or
/// over. Any other error ends the wait.
async fn begin_waiting<F, Fut>(options: &RunOptions, mut begin: F) -> Result<Held, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Held, EngineError>>,
{
    let mut last_said: Option<Instant> = None;
    let mut expired = 0;
    loop {
        match begin().await {
            // a lease run out that nobody takes over is a run of another kind whose runner is
            // gone: waiting longer changes nothing, and the error says whose it is
            Err(error @ EngineError::Busy { seconds_left: 0, .. }) if options.wait && expired >= 3 => {
                return Err(error);
            }
            Err(EngineError::Busy { run_id, state, owner, seconds_left }) if options.wait => {
                expired = if seconds_left == 0 { expired + 1 } else { 0 };
                if last_said.is_none_or(|at| at.elapsed().as_secs() >= 5) {
                    eprintln!(
                        "{}: run #{run_id} ({state}) is held by {owner} for {seconds_left} s more; waiting for it (--wait)",
                        options.env
                    );
                    last_said = Some(Instant::now());
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// Says where a run starts when it is not at the beginning: a take-over (which keeps the run's
/// own pacing), or a new run after a failed one's checkpoint.
fn announce(env: Environment, run: &RunRecord, options: &RunOptions) {
    let resume_from = options.resume_from;
    if run.checkpoint > run.low_id {
        eprintln!("{env}: resuming run #{} after id {}", run.id, run.checkpoint);
        if run.pacing != options.pacing {
            eprintln!(
                "{env}: run #{} keeps its pacing (chunks of {}, {} ms apart); change it with `sti-rollout control --env {env} pace`",
                run.id, run.pacing.chunk_size, run.pacing.pause_ms
            );
        }
    } else if resume_from.is_none() && run.low_id > 0 {
        eprintln!(
            "{env}: run #{} continues after id {}, where the failed run before it stopped (--restart for the whole range)",
            run.id, run.low_id
        );
    }
}

/// `backfill`, `rollback` and `reconcile`: begins (or takes over) a run of `kind` — waiting for
/// a held one with `--wait` — drives it with a progress line, and prints its summary.
async fn run(
    control: &Database,
    target: &Database,
    kind: RunKind,
    options: RunOptions,
) -> Result<(), CliError> {
    let env = options.env;
    let engine_error = |source| CliError::Engine { env, source };
    let started = Instant::now();
    let start = start(&options);
    let held = begin_waiting(&options, || {
        operate::begin(control, target, kind, &start, options.override_gate.as_deref())
    })
    .await
    .map_err(engine_error)?;
    match &held.run.ids {
        Some(ids) => eprintln!(
            "{env}: reconcile #{} re-copies {} ids the last verification found different",
            held.run.id,
            format_count(ids.len() as i64)
        ),
        None => announce(env, &held.run, &options),
    }
    let mut reporter = Reporter::new(format!("{env} {} #{}", kind.as_str(), held.run.id), held.run.low_id);
    let mut observe = |run: &RunRecord, _: Option<&backfill::ChunkOutcome>| {
        reporter.set_expected(run.rows_expected);
        match &run.hold {
            Some(hold) => reporter.hold(hold),
            // a rollback's progress is the rows it deleted
            None if kind == RunKind::Rollback => reporter.update(run.checkpoint, run.high_id, run.created()),
            None => reporter.update(run.checkpoint, run.high_id, run.rows_read),
        }
    };
    let result = backfill::run(target, Some(control), env, held, &mut observe).await;
    reporter.finish();
    let run = result.map_err(engine_error)?;
    let (created, skipped) = match kind {
        RunKind::Backfill => ("created", "skipped"),
        RunKind::Rollback => ("deleted", "skipped"),
        RunKind::Reconcile => ("re-copied", "already right"),
    };
    summary(&run, started, options.json, created, skipped);
    if run.state != crate::domain::run::RunState::Completed {
        return Err(CliError::Ended { env, run_id: run.id, state: run.state.to_string() });
    }
    if kind == RunKind::Reconcile && !options.json {
        println!("  now verify: `sti-rollout verify --env {env}`");
    }
    Ok(())
}

/// The end-of-run summary: a human line on stdout, or one JSON object with `--json`.
pub(super) fn summary(run: &RunRecord, started: Instant, json: bool, created: &str, skipped: &str) {
    let seconds = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            json!({
                "run_id": run.id,
                "kind": run.kind.as_str(),
                "state": run.state.as_str(),
                "created": run.created(),
                "skipped": run.skipped(),
                "errors": run.errors,
                "school_created": run.school_created,
                "self_study_created": run.self_study_created,
                "rows_read": run.rows_read,
                "chunks": run.chunks,
                "low_id": run.low_id,
                "high_id": run.high_id,
                "checkpoint": run.checkpoint,
                "duration_seconds": seconds,
                "workers": run.workers,
                "fk_validation_seconds": run.fk_validation_ms.map(|ms| ms as f64 / 1000.0),
            })
        );
    } else {
        println!(
            "{} #{} {}: {} {created} (school {}, self-study {}), {} {skipped}, {} errors, {} chunks in {:.1} s",
            run.kind.as_str(),
            run.id,
            run.state,
            format_count(run.created()),
            format_count(run.school_created),
            format_count(run.self_study_created),
            format_count(run.skipped()),
            format_count(run.errors),
            run.chunks,
            seconds
        );
        if let Some(ms) = run.fk_validation_ms {
            println!(
                "  the foreign keys were added back and validated in {:.1} s (part of the time above)",
                ms as f64 / 1000.0
            );
        }
    }
}
