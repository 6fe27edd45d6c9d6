//! The engine's subcommands: `backfill`, `rollback`, `verify` and `runs`.

use super::progress::Reporter;
use super::CliError;
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::format::format_count;
use crate::domain::pacing::Pacing;
use crate::domain::run::RunKind;
use crate::domain::run::RunRequest;
use crate::engine::backfill::{self, Start};
use crate::engine::runs::{self, Held, RunRecord};
use crate::engine::EngineError;
use crate::engine::{operate, rollback};
use serde_json::json;
use std::time::Instant;

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
}

fn start(options: &RunOptions) -> Start {
    Start {
        env: options.env,
        started_by: super::actor(),
        pacing: options.pacing,
        resume_from: options.resume_from,
        lease_ms: options.lease_ms,
        policy: options.policy.clone(),
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
pub async fn run(
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

pub async fn backfill_dry_run(
    control: &Database,
    target: &Database,
    options: RunOptions,
) -> Result<(), CliError> {
    let env = options.env;
    let mut reporter = Reporter::new(format!("{env} dry-run"), options.resume_from.unwrap_or(0));
    let mut rows = 0;
    let report = operate::dry_run(
        control,
        target,
        env,
        &super::actor(),
        options.pacing.chunk_size,
        options.resume_from,
        &mut |checkpoint, high| {
            rows = checkpoint;
            reporter.update(checkpoint, high, rows);
        },
    )
    .await
    .map_err(|source| CliError::Engine { env, source })?;
    reporter.finish();
    if options.json {
        println!("{}", json!(report));
        return Ok(());
    }
    println!(
        "{env} dry-run over ids ({}, {}] in {} chunks, {} rows read — nothing written",
        report.low_id,
        report.high_id,
        report.chunks,
        format_count(report.rows_read)
    );
    println!(
        "  would create   school {:>12}   self-study {:>12}",
        format_count(report.would_create.school),
        format_count(report.would_create.self_study)
    );
    println!(
        "  would skip     school {:>12}   self-study {:>12}   (already present)",
        format_count(report.would_skip.school),
        format_count(report.would_skip.self_study)
    );
    println!("  would reject   {:>12}", format_count(report.would_reject));
    for (reason, n) in &report.reasons {
        println!("    {reason:<22} {:>10}", format_count(*n));
    }
    println!(
        "  took {:.1} s; a live run would take about {:.1} s ({} rate)",
        report.duration_ms as f64 / 1000.0,
        report.estimated_live_seconds,
        report.estimate_basis
    );
    Ok(())
}

pub async fn reconcile_dry_run(
    control: &Database,
    target: &Database,
    env: Environment,
    json: bool,
) -> Result<(), CliError> {
    let plan = crate::engine::reconcile::plan(control, target, env)
        .await
        .map_err(|source| CliError::Engine { env, source })?;
    if json {
        println!("{}", json!({ "plan": plan }));
    } else {
        println!(
            "{env} reconcile dry-run — nothing written: {} ids from verification #{} would be re-copied{}",
            format_count(plan.ids.len() as i64),
            plan.verification_id,
            if plan.truncated { " (it found more: verify again after the reconcile)" } else { "" }
        );
        let shown: Vec<String> = plan.ids.iter().take(50).map(i64::to_string).collect();
        println!("  {}{}", shown.join(" "), if plan.ids.len() > 50 { " …" } else { "" });
    }
    Ok(())
}

pub async fn rollback_dry_run(
    control: &Database,
    target: &Database,
    env: Environment,
    json: bool,
) -> Result<(), CliError> {
    let engine_error = |source| CliError::Engine { env, source };
    let flag = rollback::ensure_flag_off(control, env).await;
    let plan = rollback::plan(target, env).await.map_err(engine_error)?;
    if json {
        println!("{}", json!({ "plan": plan, "refused": flag.as_ref().err().map(ToString::to_string) }));
    } else {
        println!("{env} rollback dry-run — nothing deleted");
        println!(
            "  would delete   school {:>12}   self-study {:>12}",
            format_count(plan.school),
            format_count(plan.self_study)
        );
        println!("  would keep     {:>12} rows the application wrote", format_count(plan.kept));
        if let Err(e) = &flag {
            println!("  a live rollback would be refused now: {e}");
        }
    }
    Ok(())
}

pub async fn verify(
    control: &Database,
    target: &Database,
    env: Environment,
    json: bool,
) -> Result<(), CliError> {
    let mut reporter = Reporter::new(format!("{env} verify"), 0);
    let report = operate::verify(control, target, env, &super::actor(), &mut |checkpoint, high| {
        reporter.update(checkpoint, high, checkpoint);
    })
    .await
    .map_err(|source| CliError::Engine { env, source })?;
    reporter.finish();
    if json {
        println!("{}", json!(report));
    } else {
        println!(
            "{env} verify: {} in {} ranges ({:.1} s)",
            if report.ok { "every range matches" } else { "MISMATCH" },
            report.ranges,
            report.duration_ms as f64 / 1000.0
        );
        println!(
            "  legacy school {:>12}   school_projects     {:>12}",
            format_count(report.legacy_school),
            format_count(report.school_rows)
        );
        println!(
            "  legacy self   {:>12}   self_study_projects {:>12}",
            format_count(report.legacy_self_study),
            format_count(report.self_study_rows)
        );
        for m in &report.mismatches {
            println!(
                "  ids ({}, {}]: school {} legacy vs {} copied, self-study {} vs {}; differing ids {:?}",
                m.from_id,
                m.to_id,
                m.legacy_school,
                m.school_rows,
                m.legacy_self_study,
                m.self_study_rows,
                &m.ids[..m.ids.len().min(20)]
            );
        }
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::Mismatch { env, ranges: report.mismatches.len() })
    }
}

pub async fn control(
    control: &Database,
    target: &Database,
    env: Environment,
    action: super::ControlAction,
) -> Result<(), CliError> {
    use super::ControlAction;
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

pub async fn list(target: &Database, env: Environment, limit: i64, json: bool) -> Result<(), CliError> {
    let runs = runs::list(target, limit).await.map_err(|source| CliError::Engine { env, source })?;
    if json {
        println!("{}", json!(runs));
        return Ok(());
    }
    if runs.is_empty() {
        println!("{env}: no runs yet");
        return Ok(());
    }
    println!(
        "{:>5}  {:<8}  {:<9}  {:>23}  {:>11}  {:>11}  {:>7}  started by",
        "run", "kind", "state", "checkpoint / last id", "created", "skipped", "errors"
    );
    for run in runs {
        println!(
            "{:>5}  {:<8}  {:<9}  {:>23}  {:>11}  {:>11}  {:>7}  {}",
            run.id,
            run.kind.as_str(),
            run.state.as_str(),
            format!("{} / {}", format_count(run.checkpoint), format_count(run.high_id)),
            format_count(run.created()),
            format_count(run.skipped()),
            format_count(run.errors),
            run.started_by
        );
    }
    Ok(())
}

/// The end-of-run summary: a human line on stdout, or one JSON object with `--json`.
fn summary(run: &RunRecord, started: Instant, json: bool, created: &str, skipped: &str) {
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
    }
}
