//! What operators do, audited: every entry point the CLI and the console share. Each function
//! does the engine's work on the target database, mirrors it into the control database and
//! appends to the audit log who did it, so the two front ends cannot drift apart.

use super::backfill::{self, Start};
use super::runs::{self, Held, RunRecord};
use super::verify::{self, VerifyReport};
use super::{capture, dry_run, mirror, reconcile, rollback, EngineError};
use crate::db::audit::{self, Entry};
use crate::db::control::ENABLE_STI;
use crate::db::Database;
use crate::domain::environment::Environment;
pub use crate::domain::live::Stopped;
use crate::domain::pacing::Pacing;
use crate::domain::reports::DryRunReport;
use crate::domain::run::{RunKind, RunRequest};
use serde_json::json;

fn run_state(run: &RunRecord) -> serde_json::Value {
    json!({
        "run_id": run.id,
        "kind": run.kind.as_str(),
        "state": run.state.as_str(),
        "chunk_size": run.pacing.chunk_size,
        "pause_ms": run.pacing.pause_ms,
        "target_chunk_ms": run.pacing.target_chunk_ms,
        "low_id": run.low_id,
        "high_id": run.high_id,
        "checkpoint": run.checkpoint,
    })
}

/// Starts a backfill or rollback run (or takes over the active one of the same kind whose
/// runner died), as `start.started_by`. A new live backfill must pass its environment's gate
/// (the environment before it verified, …) unless `override_gate` gives an admin's reason.
pub async fn begin(
    control: &Database,
    target: &Database,
    kind: RunKind,
    start: &Start,
    override_gate: Option<&str>,
) -> Result<Held, EngineError> {
    // a health signal that cannot be read stops the start, not the run
    super::throttle::probe(target, &start.policy.throttle).await?;
    // nothing is installed or removed for a start that cannot happen: another kind's run is
    // active (the capture stays as that run needs it)
    if kind == RunKind::Rollback {
        // before anything is ended or removed for it
        rollback::ensure_flag_off(control, start.env).await?;
    }
    if let Some(active) = runs::active(target).await? {
        if kind == RunKind::Rollback && active.kind != kind && runs::abandoned(target, &active).await? {
            // a rollback asked for while a run of another kind is dead (a killed deferred
            // backfill, say): that run ends first, its keys back
            end_abandoned(control, target, start.env, &start.started_by, active).await?;
        } else if active.kind != kind || start.resume_from.is_some() {
            return Err(runs::busy(target).await);
        }
    }
    let held = match kind {
        RunKind::Backfill => {
            // the gate is checked on the decision that is carried out: a run that ends between
            // the two cannot turn a take-over into a new run past a closed gate
            let mut beginning = backfill::plan(target, start).await?;
            if let backfill::Beginning::New(_) = beginning {
                let gate = crate::db::rollout::backfill_gate(control, start.env).await?;
                check_gate(control, start.env, &start.started_by, "a live backfill", gate, override_gate)
                    .await?;
            }
            // from here on every application write keeps the subtype rows in step; a row
            // inserted between the plan and the capture is inside the run's range
            install_capture(control, target, start).await?;
            if let backfill::Beginning::New(new) = &mut beginning {
                new.high_id = new.high_id.max(crate::db::target::max_project_id(target).await?.unwrap_or(0));
            }
            backfill::carry_out(target, &beginning, start).await?
        }
        RunKind::Reconcile => {
            // an active reconcile whose runner died is taken over whatever verification says now
            let plan = match runs::active(target).await? {
                Some(active) if active.kind == RunKind::Reconcile => None,
                _ => Some(reconcile::plan(control, target, start.env).await?),
            };
            // what the verification found different stays in step from here on
            install_capture(control, target, start).await?;
            reconcile::begin(target, plan.as_ref(), start).await?
        }
        RunKind::Rollback => {
            rollback::ensure_flag_off(control, start.env).await?;
            // the capture would write back what the rollback deletes
            remove_capture(control, target, start).await?;
            rollback::begin(target, control, start).await?
        }
    };
    let taken_over = held.run.started_by != start.started_by || held.run.checkpoint > held.run.low_id;
    mirror::record(Some(control), start.env, &held.run).await;
    let mut after = run_state(&held.run);
    if kind == RunKind::Backfill && !taken_over {
        // the run keeps the forecast it started with, to be set against what it took
        if let Some(seconds) = forecast_at_start(control, start.env, &held.run).await {
            after["forecast_seconds"] = json!(seconds);
        }
    }
    audit::record_or_log(
        control,
        Entry {
            actor: &start.started_by,
            action: if taken_over { "run.take_over" } else { "run.start" },
            environment: Some(start.env),
            after: Some(after),
            ..Default::default()
        },
    )
    .await;
    Ok(held)
}

/// How long `run` should take at its own pacing, from the environment's last dry-run's rate and
/// the rows the run expects (else the dry-run's rows); `None` without a dry-run to go by.
async fn forecast_at_start(control: &Database, env: Environment, run: &RunRecord) -> Option<f64> {
    let last = crate::db::live::last_dry_run(control, env).await.ok().flatten()?;
    let rate = last.report.rows_per_second;
    let rows = run.rows_expected.unwrap_or(last.report.rows_read);
    (rate > 0.0).then(|| {
        crate::domain::forecast::paced_seconds(rows, rate, run.pacing.chunk_size, run.pacing.pause_ms)
    })
}

/// How long installing or removing the capture goes on trying for its locks, at most: a start
/// from the console is an HTTP request, which must be answered well within its two minutes.
const CAPTURE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long one try waits for its locks: the configured lock timeout, at most
/// [`super::ddl::TRY_LOCK_TIMEOUT`].
fn capture_try_timeout(start: &Start) -> std::time::Duration {
    std::time::Duration::from_millis(start.policy.session.lock_timeout_ms.max(1) as u64)
        .min(super::ddl::TRY_LOCK_TIMEOUT)
}

/// How long the capture waits for its locks in all: the policy's give-up time, at most
/// [`CAPTURE_WAIT`].
fn capture_wait(start: &Start) -> std::time::Duration {
    start.policy.retry.give_up_after().min(CAPTURE_WAIT)
}

/// Installs or removes (`what`) the capture with `attempt`, tried behind the application's
/// transactions for [`capture_wait`]; a failure other than the wait says which it was.
async fn capture_ddl<F, Fut>(
    target: &Database,
    start: &Start,
    what: &'static str,
    attempt: F,
) -> Result<bool, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, EngineError>>,
{
    let doing =
        if what == "install" { "installing the change capture" } else { "removing the change capture" };
    super::ddl::with_tries(target, doing, capture_wait(start), attempt).await.map_err(|error| match error {
        EngineError::LockWait { .. } => error,
        error => EngineError::Capture { what, message: error.to_string() },
    })
}

/// Installs the change capture on the target unless it is there (audited when it was not).
/// Each try waits a moment for the locks on `projects` and the subtype tables, so application
/// writes never queue long behind it; it tries again behind a long transaction (saying so in
/// the log) and gives up, changing nothing, after [`capture_wait`].
async fn install_capture(control: &Database, target: &Database, start: &Start) -> Result<(), EngineError> {
    let lock_timeout = capture_try_timeout(start);
    let installed = capture_ddl(target, start, "install", || capture::install(target, lock_timeout)).await?;
    if installed {
        tracing::info!(environment = %start.env, "change capture installed on projects");
        audit::record_or_log(
            control,
            Entry {
                actor: &start.started_by,
                action: "capture.install",
                environment: Some(start.env),
                after: Some(json!({ "capture": true, "lock_timeout_ms": lock_timeout.as_millis() as i64 })),
                ..Default::default()
            },
        )
        .await;
    }
    Ok(())
}

/// Removes the change capture (audited when it was there).
async fn remove_capture(control: &Database, target: &Database, start: &Start) -> Result<(), EngineError> {
    let removed =
        capture_ddl(target, start, "remove", || capture::remove(target, capture_try_timeout(start))).await?;
    if removed {
        tracing::info!(environment = %start.env, "change capture removed from projects");
        audit::record_or_log(
            control,
            Entry {
                actor: &start.started_by,
                action: "capture.remove",
                environment: Some(start.env),
                before: Some(json!({ "capture": true })),
                after: Some(json!({ "capture": false })),
                ..Default::default()
            },
        )
        .await;
    }
    Ok(())
}

/// Asks the environment's active run (or run `run_id`, which must be it) to pause, resume or
/// cancel at its next chunk boundary.
pub async fn request(
    control: &Database,
    target: &Database,
    env: Environment,
    actor: &str,
    run_id: Option<i64>,
    request: RunRequest,
) -> Result<RunRecord, EngineError> {
    let action = match request {
        RunRequest::Pause => "run.pause",
        RunRequest::Resume => "run.resume",
        RunRequest::Cancel => "run.cancel",
    };
    let asked = change_active_run(control, target, env, actor, run_id, action, |id| {
        runs::request(target, id, request)
    })
    .await?;
    if request == RunRequest::Cancel && runs::abandoned(target, &asked).await? {
        // nobody would ever act on it: the one who cancels ends the run
        return end_abandoned(control, target, env, actor, asked).await;
    }
    Ok(asked)
}

/// Ends `run`, whose runner is gone, as cancelled: takes it over (so a runner that comes back
/// commits nothing more), puts back keys it dropped, mirrors and audits it. A run the CLI
/// started and nobody resumes would otherwise stay active, its keys dropped, until some
/// backfill took it over.
async fn end_abandoned(
    control: &Database,
    target: &Database,
    env: Environment,
    actor: &str,
    run: RunRecord,
) -> Result<RunRecord, EngineError> {
    let mut held = runs::take_over(target, run.id, &super::runner_name(), runs::DEFAULT_LEASE_MS).await?;
    held.transition(
        target,
        crate::domain::run::RunState::Cancelled,
        Some("cancelled while its runner was gone"),
    )
    .await?;
    tracing::warn!(environment = %env, run_id = run.id, "the run's runner was gone: the cancel ended it");
    if let Err(error) = super::deferred::restore_with_tries(target, CAPTURE_WAIT).await {
        tracing::error!(environment = %env, %error, "cannot put the subtype tables' foreign keys back yet; the next run or a console replica's watch does");
    }
    mirror::record(Some(control), env, &held.run).await;
    audit::record_or_log(
        control,
        Entry {
            actor,
            action: "run.end_abandoned",
            environment: Some(env),
            before: Some(run_state(&run)),
            after: Some(run_state(&held.run)),
            reason: Some("its runner was gone"),
        },
    )
    .await;
    Ok(held.run)
}

/// Changes the active run's chunk size, pause and target chunk time; the runner reads them at
/// its next chunk boundary.
pub async fn set_pacing(
    control: &Database,
    target: &Database,
    env: Environment,
    actor: &str,
    run_id: Option<i64>,
    pacing: Pacing,
) -> Result<RunRecord, EngineError> {
    change_active_run(control, target, env, actor, run_id, "run.pace", |id| {
        runs::set_pacing(target, id, pacing)
    })
    .await
}

/// Changes the active run (or run `run_id`, which must be it) with `change`, mirrors it, and
/// records `action` with the run's state before and after.
async fn change_active_run<F, Fut>(
    control: &Database,
    target: &Database,
    env: Environment,
    actor: &str,
    run_id: Option<i64>,
    action: &str,
    change: F,
) -> Result<RunRecord, EngineError>
where
    F: FnOnce(i64) -> Fut,
    Fut: std::future::Future<Output = Result<RunRecord, EngineError>>,
{
    let active = active_run(target, run_id).await?;
    let updated = change(active.id).await?;
    mirror::record(Some(control), env, &updated).await;
    audit::record_or_log(
        control,
        Entry {
            actor,
            action,
            environment: Some(env),
            before: Some(run_state(&active)),
            after: Some(run_state(&updated)),
            ..Default::default()
        },
    )
    .await;
    Ok(updated)
}

async fn active_run(target: &Database, run_id: Option<i64>) -> Result<RunRecord, EngineError> {
    match (runs::active(target).await?, run_id) {
        (Some(active), None) => Ok(active),
        (Some(active), Some(id)) if active.id == id => Ok(active),
        (_, Some(id)) => {
            let run = runs::get(target, id).await?;
            Err(EngineError::NotActive { run_id: id, state: run.state.to_string() })
        }
        (None, None) => Err(EngineError::NoActiveRun),
    }
}

/// A dry-run, audited with what it found (it writes nothing to the target database).
pub async fn dry_run(
    control: &Database,
    target: &Database,
    env: Environment,
    actor: &str,
    pacing: crate::domain::pacing::Pacing,
    resume_from: Option<i64>,
    progress: &mut (dyn FnMut(i64, i64) + Send),
) -> Result<DryRunReport, EngineError> {
    let report = dry_run::dry_run(target, Some(control), env, pacing, resume_from, progress).await?;
    audit::record_or_log(
        control,
        Entry {
            actor,
            action: "dry_run",
            environment: Some(env),
            after: Some(json!({
                "chunk_size": pacing.chunk_size, "pause_ms": pacing.pause_ms,
                "low_id": report.low_id,
                "high_id": report.high_id,
                "would_create": report.would_create.school + report.would_create.self_study,
                "would_skip": report.would_skip.school + report.would_skip.self_study,
                "would_reject": report.would_reject,
                // the whole report, so the page keeps the last dry-run with who ran it and when
                "report": report,
            })),
            ..Default::default()
        },
    )
    .await;
    Ok(report)
}

/// Verifies the environment and records the report (control `verifications`) and who asked.
pub async fn verify(
    control: &Database,
    target: &Database,
    env: Environment,
    actor: &str,
    progress: &mut (dyn FnMut(i64, i64) + Send),
) -> Result<VerifyReport, EngineError> {
    let report = verify::verify(target, Some(control), env, progress).await?;
    audit::record_or_log(
        control,
        Entry {
            actor,
            action: "verify",
            environment: Some(env),
            after: Some(json!({
                "ok": report.ok,
                "ranges": report.ranges,
                "mismatched_ranges": report.mismatches.len(),
                "mismatched_ids": report.mismatched_ids.len(),
            })),
            ..Default::default()
        },
    )
    .await;
    Ok(report)
}

/// The emergency stop: cancels the active run (at its next chunk boundary, within a chunk's
/// time) and turns `ENABLE_STI` off, whatever their state; audited with the reason given.
pub async fn emergency_stop(
    control: &Database,
    target: &Database,
    env: Environment,
    actor: &str,
    reason: &str,
) -> Result<Stopped, EngineError> {
    // the flag goes off and the stop is recorded in one transaction; then the run is told
    let active = runs::active(target).await?;
    let cancelled_run = active.as_ref().map(|a| a.id);
    let flag_was_on = crate::db::control::set_flag(control, env, ENABLE_STI, false, actor, |was_on| Entry {
        actor,
        action: "emergency_stop",
        environment: Some(env),
        before: Some(json!({ "ENABLE_STI": was_on, "active_run": cancelled_run })),
        after: Some(json!({ "ENABLE_STI": false, "cancel_requested": cancelled_run })),
        reason: Some(reason),
    })
    .await?;
    if let Some(active) = active.filter(|a| a.requested != Some(RunRequest::Cancel)) {
        let updated = runs::request(target, active.id, RunRequest::Cancel).await?;
        mirror::record(Some(control), env, &updated).await;
    }
    let stopped = Stopped { environment: env, cancelled_run, flag_was_on };
    Ok(stopped)
}

/// Acknowledges `env`'s open emergency stop: someone has read it and owns what comes next; the
/// console stops showing it. `note` (may be empty) goes into the audit log.
pub async fn acknowledge_stop(
    control: &Database,
    env: Environment,
    actor: &str,
    note: &str,
) -> Result<i64, EngineError> {
    let open = crate::db::live::incident(control, env, None).await?.ok_or(EngineError::NoOpenStop)?;
    let note = note.trim();
    audit::record(
        control,
        Entry {
            actor,
            action: crate::domain::incident::ACKNOWLEDGE,
            environment: Some(env),
            before: Some(json!({ "stop": open.id, "stopped_by": open.actor })),
            reason: (!note.is_empty()).then_some(note),
            ..Default::default()
        },
    )
    .await?;
    Ok(open.id)
}

/// Checks the gate of `env`'s live backfill; a closed gate refuses unless an admin overrides it
/// with a written reason, which is audited.
async fn check_gate(
    control: &Database,
    env: Environment,
    actor: &str,
    what: &str,
    gate: Result<(), String>,
    override_reason: Option<&str>,
) -> Result<(), EngineError> {
    let Err(reason) = gate else { return Ok(()) };
    let Some(why) = override_reason.map(str::trim).filter(|w| !w.is_empty()) else {
        return Err(EngineError::GateClosed { env: env.to_string(), what: what.to_owned(), reason });
    };
    audit::record_or_log(
        control,
        Entry {
            actor,
            action: "gate.override",
            environment: Some(env),
            before: Some(json!({ "gate": what, "closed": reason })),
            reason: Some(why),
            ..Default::default()
        },
    )
    .await;
    Ok(())
}

/// Turns `ENABLE_STI` on or off in `env`. On needs the environment verified (an admin may
/// override with a reason); off is always allowed — it is the quick rollback.
pub async fn set_flag(
    control: &Database,
    env: Environment,
    actor: &str,
    enabled: bool,
    reason: Option<&str>,
    override_gate: Option<&str>,
) -> Result<bool, EngineError> {
    if enabled {
        let phases = crate::db::rollout::phases(control, env).await?;
        let gate = crate::domain::phases::flag_gate(env, &phases);
        check_gate(control, env, actor, "flag on", gate, override_gate).await?;
    }
    let before = crate::db::control::set_flag(control, env, ENABLE_STI, enabled, actor, |before| Entry {
        actor,
        action: "flag.set",
        environment: Some(env),
        before: Some(json!({ "enabled": before })),
        after: Some(json!({ "enabled": enabled })),
        reason: reason.map(str::trim).filter(|r| !r.is_empty()),
    })
    .await?;
    Ok(before)
}
