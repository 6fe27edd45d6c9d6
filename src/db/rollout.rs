//! The rollout plan's facts, from the control database: what `domain::phases::derive` and the
//! gates read for an environment — runs from the mirror, the last dry-run and the flag's history
//! from the audit log, the last verification, and the checklist's sign-offs.

use super::control::{self, ENABLE_STI};
use super::Database;
use crate::domain::environment::Environment;
use crate::domain::phases::{Facts, Phase, PhaseStatus, RunFact};
use crate::domain::run::{RunKind, RunState};
use sqlx::Row;

/// Everything the phases of `env` are derived from.
pub async fn facts(control: &Database, env: Environment) -> Result<Facts, sqlx::Error> {
    let runs = sqlx::query(
        "select run_id, kind, state, finished_at, error from runs where environment = $1 order by run_id",
    )
    .bind(env.as_str())
    .fetch_all(control.pool())
    .await?
    .iter()
    .map(|row| {
        let kind: String = row.try_get("kind")?;
        let state: String = row.try_get("state")?;
        Ok(RunFact {
            id: row.try_get("run_id")?,
            kind: RunKind::parse(&kind).unwrap_or(RunKind::Backfill),
            state: RunState::parse(&state).unwrap_or(RunState::Failed),
            finished_at: row.try_get("finished_at")?,
            error: row.try_get("error")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let last_dry_run_at: Option<i64> =
        sqlx::query_scalar("select max(at) from audit_log where environment = $1 and action = 'dry_run'")
            .bind(env.as_str())
            .fetch_one(control.pool())
            .await?;
    let last_verification = sqlx::query(
        "select case when ok then 1 else 0 end as ok, created_at, mismatched_ranges from verifications
         where environment = $1 order by id desc limit 1",
    )
    .bind(env.as_str())
    .fetch_optional(control.pool())
    .await?
    .map(|row| {
        Ok::<_, sqlx::Error>((
            row.try_get::<i64, _>("ok")? == 1,
            row.try_get::<i64, _>("created_at")?,
            row.try_get::<i64, _>("mismatched_ranges")?,
        ))
    })
    .transpose()?;
    let flag_on = control::flag(control, env, ENABLE_STI)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
        .is_some_and(|f| f.enabled);
    let turned_on: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where environment = $1 and action = 'flag.set' and after like '%\"enabled\":true%'",
    )
    .bind(env.as_str())
    .fetch_one(control.pool())
    .await?;
    let (signed, failed, total) = super::checklist::tally(control, env).await?;
    Ok(Facts {
        last_dry_run_at,
        runs,
        last_verification,
        flag_on,
        flag_was_ever_on: flag_on || turned_on > 0,
        checklist_signed: signed,
        checklist_failed: failed,
        checklist_total: total,
    })
}

/// The phases of `env`, derived from its facts.
pub async fn phases(control: &Database, env: Environment) -> Result<Vec<(Phase, PhaseStatus)>, sqlx::Error> {
    Ok(crate::domain::phases::derive(&facts(control, env).await?))
}

/// The gate of `env`'s live backfill: open, or closed with the reason.
pub async fn backfill_gate(control: &Database, env: Environment) -> Result<Result<(), String>, sqlx::Error> {
    let Some(before) = crate::domain::phases::previous(env) else { return Ok(Ok(())) };
    let phases = phases(control, before).await?;
    Ok(crate::domain::phases::backfill_gate(env, &phases))
}
