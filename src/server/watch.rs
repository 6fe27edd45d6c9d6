//! What every console replica does in the background for each environment (PRODUCT §7): it
//! brings the control database's mirror up to the target when it is behind (a run that ended
//! while the control database was away), puts back keys a deferred run left dropped, takes over a run started from the console whose runner died — once its lease expired by the
//! target's clock, or at once when the runner was a process of this host that is gone — and
//! drives it from its checkpoint, and it joins a run in slices with its own workers. Replicas
//! share nothing but the databases: two that see the same expired lease race on one fenced
//! update in the target, and one wins.

use crate::db::overview::Targets;
use crate::db::Database;
use crate::domain::environment::{Environment, PerEnv};
use crate::domain::policy::Policy;
use crate::domain::run::RunState;
use crate::engine::backfill::Start;
use crate::engine::{operate, runs, workers, EngineError};
use std::sync::Arc;
use std::time::Duration;

/// How often a replica looks at each environment's active run.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Who takes a run over, as the audit log and the run's history name it.
pub fn actor() -> String {
    format!("replica:{}", crate::engine::runner_name())
}

/// Starts the watch on a background task of this process.
pub fn start(control: Database, targets: Targets, policies: Arc<PerEnv<Arc<Policy>>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for env in Environment::ALL {
                if let Err(error) = look(&control, targets.get(env), env, &policies[env]).await {
                    tracing::debug!(environment = %env, %error, "the replica watch cannot read the environment's run");
                }
            }
        }
    });
}

/// One look at `env`'s active run.
async fn look(
    control: &Database,
    target: &Database,
    env: Environment,
    policy: &Arc<Policy>,
) -> Result<(), EngineError> {
    let active = runs::active(target).await?;
    let live = match &active {
        Some(run) => !runs::abandoned(target, run).await?,
        None => false,
    };
    if !live {
        // a live run's own writer keeps its mirror; what ended unseen is caught up here. The
        // control database may be the one that is away: the rest of the look goes on
        if let Err(error) = crate::engine::mirror::catch_up(control, env, target).await {
            tracing::debug!(environment = %env, %error, "the mirror cannot catch up just now");
        }
    }
    let Some(run) = active else {
        // keys an ended deferred run could not put back: back as soon as the lock is free (one
        // short try a look, so the application's writes never queue long behind it)
        let back =
            crate::engine::deferred::restore(target, crate::engine::ddl::TRY_LOCK_TIMEOUT, None).await?;
        if !back.is_empty() {
            tracing::warn!(environment = %env, keys = back.len(), "this replica put back the subtype tables' foreign keys an ended run had left dropped");
        }
        return Ok(());
    };
    if run.workers > 1 && run.state == RunState::Running {
        let crew = workers::Crew::joining(target, control, env, run.id, policy.clone());
        if !workers::join(&crew, run.workers).is_empty() {
            tracing::info!(environment = %env, run_id = run.id, workers = run.workers, "this replica joins the run with its workers");
        }
    }
    if live || !run.started_by.starts_with("user:") {
        // a live runner's; or a run the CLI started, which its own next command takes over
        return Ok(());
    }
    let start = Start {
        env,
        started_by: actor(),
        pacing: run.pacing,
        resume_from: None,
        lease_ms: runs::DEFAULT_LEASE_MS,
        policy: policy.clone(),
        workers: run.workers,
        defer_fks: run.defer_fks,
    };
    match operate::begin(control, target, run.kind, &start, None).await {
        Ok(held) => {
            tracing::warn!(environment = %env, run_id = held.run.id, previous = ?run.lease_owner,
                "the run's runner is gone: this replica took the run over and goes on from its checkpoint");
            crate::engine::jobs::spawn(control.clone(), target.clone(), env, held);
        }
        // another replica was quicker
        Err(EngineError::Busy { .. }) => {}
        Err(error) => {
            tracing::warn!(environment = %env, run_id = run.id, %error, "cannot take the abandoned run over")
        }
    }
    Ok(())
}
