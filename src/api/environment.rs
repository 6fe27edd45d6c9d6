//! The environment page's server functions: what it shows (viewers) and what operators do there
//! — dry-run, start, pause, resume, cancel, pace, verify, roll back, emergency stop. Each checks
//! the role on the server, asks the engine through `engine::operate` (audited, the same calls
//! as the CLI) and answers with a clear status: 400 for bad input, 409 when the state does not
//! allow it, 503 when a database cannot be reached.

use crate::domain::live::{DeadLetterPage, EnvironmentPage, Stopped, VerificationView};
use crate::domain::reports::{DryRunReport, RollbackPlan};
use crate::domain::run::{RunKind, RunRequest};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
pub(super) mod server {
    use crate::db::Database;
    use crate::domain::environment::Environment;
    use crate::engine::{EngineError, ErrorKind};
    use axum::http::StatusCode;
    use leptos::prelude::*;

    /// An error with its HTTP status.
    pub fn fail(status: StatusCode, message: impl Into<String>) -> ServerFnError {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(status);
        }
        ServerFnError::new(message.into())
    }

    pub fn engine_error(env: Environment, error: EngineError) -> ServerFnError {
        let status = match error.kind() {
            ErrorKind::BadInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unavailable => {
                // the database's own words (tables, columns, constraints) stay in the log
                let id = crate::db::log_with_id(&format!("engine error in {env}"), &error);
                return fail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{env}: the database cannot be used just now; try again (error id {id})"),
                );
            }
        };
        fail(status, format!("{env}: {error}"))
    }

    /// A 503 for a database that failed: a sentence and an error id; its own text goes to the log.
    pub fn db_error(what: &str, error: impl std::fmt::Display) -> ServerFnError {
        let id = crate::db::log_with_id(&format!("cannot read {what}"), &error);
        fail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} cannot be read just now; try again (error id {id})"),
        )
    }

    /// The environment named in the request, with its target database.
    pub fn environment(name: &str) -> Result<(Environment, Database, Database), ServerFnError> {
        let env = Environment::parse(name).map_err(|e| fail(StatusCode::NOT_FOUND, e.to_string()))?;
        let state = crate::api::app_state()?;
        let target = state.targets.get(env).clone();
        Ok((env, state.control, target))
    }

    /// A gate override's reason, accepted from admins only; blank means none.
    pub fn admin_override(
        user: &crate::domain::access::CurrentUser,
        reason: Option<String>,
    ) -> Result<Option<String>, ServerFnError> {
        let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if reason.is_some() && user.role != crate::domain::access::Role::Admin {
            return Err(fail(StatusCode::FORBIDDEN, "only an admin may override a gate"));
        }
        Ok(reason)
    }

    /// Changing data in prod needs the environment's name typed out, on the server too.
    pub fn confirmed(env: Environment, confirm: &str) -> Result<(), ServerFnError> {
        if env == Environment::Prod && confirm.trim() != env.as_str() {
            return Err(fail(StatusCode::BAD_REQUEST, format!("type '{env}' to confirm a change in {env}")));
        }
        Ok(())
    }
}

/// The environment page's first load: live figures, history and the caller's role.
#[server(endpoint = "get_environment", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn get_environment(env: String) -> Result<EnvironmentPage, ServerFnError> {
    use crate::domain::access::Role;
    let user = super::require(Role::Viewer).await?;
    let (env, control, target) = server::environment(&env)?;
    let live = crate::db::live::read(&control, env)
        .await
        .map_err(|e| server::db_error("the control database", e))?;
    let state = super::app_state()?;
    let contacts = state.contacts[env].clone();
    // a target database that cannot be read costs the page its rejected rows, not the page
    let dead_letters = crate::engine::dead_letters::page(&target, None, None, 1).await.map_err(|error| {
        let id = crate::db::log_with_id(&format!("cannot read {env}'s rejected rows"), &error);
        format!("{env}: the rejected rows cannot be read just now (error id {id})")
    });
    let notifications = crate::db::webhooks::recent(&control, env)
        .await
        .map(|deliveries| crate::domain::notifications::Notifications {
            hooks: state.webhooks[env].clone(),
            deliveries,
        })
        .map_err(|error| {
            let id = crate::db::log_with_id(&format!("cannot read {env}'s webhook deliveries"), &error);
            format!("the webhook deliveries cannot be read just now (error id {id})")
        });
    let keys_off = keys_off(&target).await;
    let max_workers = crate::engine::workers::most(target.dialect());
    Ok(EnvironmentPage {
        live,
        contacts,
        role: user.role,
        dead_letters,
        notifications,
        keys_off,
        max_workers,
    })
}

/// The notice of foreign keys that are off, read from the target (a target that cannot be read
/// costs the page this line, logged).
#[cfg(feature = "ssr")]
async fn keys_off(target: &crate::db::Database) -> Option<String> {
    crate::engine::deferred::notice(target).await.unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot read whether the subtype tables' foreign keys are off");
        None
    })
}

/// A page of rejected rows (one per project id), optionally of one reason and one run.
#[server(endpoint = "dead_letters", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn dead_letters(
    env: String,
    reason: Option<String>,
    run: Option<i64>,
    page: i64,
) -> Result<DeadLetterPage, ServerFnError> {
    super::require(crate::domain::access::Role::Viewer).await?;
    let (env, _, target) = server::environment(&env)?;
    let reason = reason.filter(|r| !r.is_empty());
    crate::engine::dead_letters::page(&target, reason.as_deref(), run, page)
        .await
        .map_err(|e| server::engine_error(env, e))
}

/// Starts a backfill or a rollback in the background (or takes over the environment's active
/// run of that kind whose runner died); returns the run's id at once. `workers` (a backfill on
/// PostgreSQL; absent: 1) is how many workers each console replica puts on it. Deferred
/// validation is the CLI's (`backfill --defer-fk-validation`): the console shows its step.
#[server(endpoint = "start_run", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn start_run(
    env: String,
    kind: RunKind,
    chunk_size: i64,
    pause_ms: i64,
    confirm: String,
    override_gate: Option<String>,
    workers: Option<i64>,
) -> Result<i64, ServerFnError> {
    use crate::domain::pacing::Pacing;
    use crate::engine::backfill::Start;
    let user = super::require(crate::domain::access::Role::Operator).await?;
    let (env, control, target) = server::environment(&env)?;
    server::confirmed(env, &confirm)?;
    let override_gate = server::admin_override(&user, override_gate)?;
    let pacing =
        Pacing::parse(chunk_size, pause_ms, None).map_err(|e| server::engine_error(env, e.into()))?;
    let start = Start {
        env,
        started_by: user.actor(),
        pacing,
        resume_from: None,
        lease_ms: crate::engine::runs::DEFAULT_LEASE_MS,
        policy: crate::api::app_state()?.policies[env].clone(),
        workers: workers.unwrap_or(1),
        defer_fks: false,
    };
    let held = crate::engine::operate::begin(&control, &target, kind, &start, override_gate.as_deref())
        .await
        .map_err(|e| server::engine_error(env, e))?;
    let run_id = held.run.id;
    crate::engine::jobs::spawn(control, target, env, held);
    Ok(run_id)
}

/// Walks the environment read-only and reports what a live backfill would do.
#[server(endpoint = "dry_run", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn dry_run(
    env: String,
    chunk_size: i64,
    pause_ms: Option<i64>,
) -> Result<DryRunReport, ServerFnError> {
    let user = super::require(crate::domain::access::Role::Operator).await?;
    let (env, control, target) = server::environment(&env)?;
    let pacing = crate::domain::pacing::Pacing::parse(chunk_size, pause_ms.unwrap_or(0), None)
        .map_err(|e| server::engine_error(env, e.into()))?;
    crate::engine::operate::dry_run(&control, &target, env, &user.actor(), pacing, None, &mut |_, _| {})
        .await
        .map_err(|e| server::engine_error(env, e))
}

/// A rollback's dry-run: what it would delete and keep, and why it would be refused now.
#[server(endpoint = "plan_rollback", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn plan_rollback(env: String) -> Result<(RollbackPlan, Option<String>), ServerFnError> {
    super::require(crate::domain::access::Role::Operator).await?;
    let (env, control, target) = server::environment(&env)?;
    let refused = crate::engine::rollback::ensure_flag_off(&control, env).await.err().map(|e| e.to_string());
    let plan = crate::engine::rollback::plan(&target, env).await.map_err(|e| server::engine_error(env, e))?;
    Ok((plan, refused))
}

/// Pause, resume or cancel the environment's active run (which must be `run_id`).
#[server(endpoint = "control_run", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn control_run(env: String, run_id: i64, request: RunRequest) -> Result<(), ServerFnError> {
    let user = super::require(crate::domain::access::Role::Operator).await?;
    let (env, control, target) = server::environment(&env)?;
    crate::engine::operate::request(&control, &target, env, &user.actor(), Some(run_id), request)
        .await
        .map_err(|e| server::engine_error(env, e))?;
    Ok(())
}

/// Changes the active run's chunk size and pause between chunks.
#[server(endpoint = "pace_run", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn pace_run(env: String, run_id: i64, chunk_size: i64, pause_ms: i64) -> Result<(), ServerFnError> {
    let user = super::require(crate::domain::access::Role::Operator).await?;
    let (env, control, target) = server::environment(&env)?;
    let pacing = crate::domain::pacing::Pacing::parse(chunk_size, pause_ms, None)
        .map_err(|e| server::engine_error(env, e.into()))?;
    crate::engine::operate::set_pacing(&control, &target, env, &user.actor(), Some(run_id), pacing)
        .await
        .map_err(|e| server::engine_error(env, e))?;
    Ok(())
}

/// Verifies the environment; the result is kept and pushed to every open page.
#[server(endpoint = "verify_environment", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn verify_environment(env: String) -> Result<VerificationView, ServerFnError> {
    let user = super::require(crate::domain::access::Role::Operator).await?;
    let (env, control, target) = server::environment(&env)?;
    crate::engine::operate::verify(&control, &target, env, &user.actor(), &mut |_, _| {})
        .await
        .map_err(|e| server::engine_error(env, e))?;
    crate::db::live::last_verification(&control, env)
        .await
        .map_err(|e| server::db_error("the verification", e))?
        .ok_or_else(|| server::db_error("the verification", "it was not recorded"))
}

/// Cancels the active run and turns `ENABLE_STI` off in one environment, or in all of them
/// (`env = "all"`, which needs `all` typed out, like prod needs `prod`).
#[server(endpoint = "emergency_stop", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn emergency_stop(
    env: String,
    confirm: String,
    reason: String,
) -> Result<Vec<Stopped>, ServerFnError> {
    use crate::domain::environment::Environment;
    let user = super::require(crate::domain::access::Role::Operator).await?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(server::fail(axum::http::StatusCode::BAD_REQUEST, "say why you stop (a few words)"));
    }
    let all = env == "all";
    if all && confirm.trim() != "all" {
        return Err(server::fail(
            axum::http::StatusCode::BAD_REQUEST,
            "type 'all' to stop every environment",
        ));
    }
    let names: Vec<&str> =
        if all { Environment::ALL.iter().map(|e| e.as_str()).collect() } else { vec![&env] };
    let mut stopped = Vec::new();
    for name in names {
        let (env, control, target) = server::environment(name)?;
        if !all {
            server::confirmed(env, &confirm)?;
        }
        stopped.push(
            crate::engine::operate::emergency_stop(&control, &target, env, &user.actor(), reason)
                .await
                .map_err(|e| server::engine_error(env, e))?,
        );
    }
    Ok(stopped)
}

/// The target database's sessions that may hold the environment's run up (the waiting box's
/// "what to check"): operators only, as they name other people's sessions and statements.
#[server(endpoint = "blockers", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn blockers(env: String) -> Result<crate::domain::blockers::Blockers, ServerFnError> {
    super::require(crate::domain::access::Role::Operator).await?;
    let (env, _, target) = server::environment(&env)?;
    crate::engine::blockers::list(&target).await.map_err(|e| server::engine_error(env, e))
}

/// Acknowledges the environment's open emergency stop (operators), with an optional note.
#[server(endpoint = "acknowledge_stop", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn acknowledge_stop(env: String, note: String) -> Result<i64, ServerFnError> {
    let user = super::require(crate::domain::access::Role::Operator).await?;
    let (env, control, _) = server::environment(&env)?;
    crate::engine::operate::acknowledge_stop(&control, env, &user.actor(), &note)
        .await
        .map_err(|e| server::engine_error(env, e))
}
