//! The D-day (a setting admins change, else the config file's) and what actually happened in
//! each environment, in days: what `domain::timeline::schedule` places against the plan.

use super::Database;
use crate::domain::calendar::Day;
use crate::domain::environment::Environment;
use crate::domain::phases::{Phase, PhaseStatus};
use crate::domain::timeline::{Actual, Timeline};
use sqlx::Row;

const D_DAY: &str = "d_day";

/// The D-day set in the console or the CLI: the day, who set it and when (epoch ms).
async fn d_day_setting(control: &Database) -> Result<Option<(Day, String, i64)>, sqlx::Error> {
    let Some(row) = sqlx::query("select value, updated_by, updated_at from rollout_settings where name = $1")
        .bind(D_DAY)
        .fetch_optional(control.pool())
        .await?
    else {
        return Ok(None);
    };
    let value: String = row.try_get("value")?;
    let day = Day::parse(&value).map_err(|e| sqlx::Error::Decode(e.into()))?;
    Ok(Some((day, row.try_get("updated_by")?, row.try_get("updated_at")?)))
}

/// Sets (or with `None` clears) the D-day as `actor`, with its audit entry (`timeline.d_day`,
/// the day before and after) in the same transaction; returns the one it replaced. Both the
/// console and the CLI change it through here.
pub async fn change_d_day(
    control: &Database,
    day: Option<Day>,
    actor: &str,
    reason: Option<&str>,
) -> Result<Option<Day>, sqlx::Error> {
    let mut tx = control.begin_write().await?;
    let before: Option<String> = sqlx::query_scalar("select value from rollout_settings where name = $1")
        .bind(D_DAY)
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query("delete from rollout_settings where name = $1").bind(D_DAY).execute(&mut *tx).await?;
    if let Some(day) = day {
        sqlx::query(
            "insert into rollout_settings (name, value, updated_by, updated_at) values ($1, $2, $3, $4)",
        )
        .bind(D_DAY)
        .bind(day.to_string())
        .bind(actor)
        .bind(super::now_ms())
        .execute(&mut *tx)
        .await?;
    }
    let before = before.and_then(|b| Day::parse(&b).ok());
    super::audit::record_in(
        &mut tx,
        super::audit::Entry {
            actor,
            action: "timeline.d_day",
            before: Some(serde_json::json!({ "d_day": before.map(|d| d.to_string()) })),
            after: Some(serde_json::json!({ "d_day": day.map(|d| d.to_string()) })),
            reason: reason.filter(|r| !r.trim().is_empty()),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(before)
}

/// What happened in `env`: its first dry-run or run, the day its last phase was done (the
/// newest sign-off, verification or flag change once every phase is done), and whether its
/// backfill is done.
async fn actual(
    control: &Database,
    env: Environment,
    phases: &[(Phase, PhaseStatus)],
) -> Result<Actual, sqlx::Error> {
    let started: Option<i64> = sqlx::query_scalar(
        "select min(at) from audit_log where environment = $1 and action in ('dry_run', 'run.start')",
    )
    .bind(env.as_str())
    .fetch_one(control.pool())
    .await?;
    let all_done = phases.iter().all(|(_, status)| status.is_done());
    let done = if all_done {
        sqlx::query_scalar(
            "select max(at) from audit_log
             where environment = $1 and action in ('checklist.sign', 'verify', 'flag.set')",
        )
        .bind(env.as_str())
        .fetch_one(control.pool())
        .await?
    } else {
        None
    };
    let backfilled = phases.iter().any(|(phase, status)| *phase == Phase::Backfill && status.is_done());
    Ok(Actual { started: started.map(Day::from_epoch_ms), done: done.map(Day::from_epoch_ms), backfilled })
}

/// The calendar as of now: the D-day set here, else `configured`; `None` when neither is.
pub async fn read(
    control: &Database,
    configured: Option<Day>,
    phases: &[(Environment, Vec<(Phase, PhaseStatus)>)],
) -> Result<Timeline, sqlx::Error> {
    let today = Day::from_epoch_ms(super::now_ms());
    let (d_day, source) = match d_day_setting(control).await? {
        Some((day, by, at)) => (Some(day), format!("set by {by} on {}", Day::from_epoch_ms(at))),
        None => match configured {
            Some(day) => (Some(day), "from the config file".to_owned()),
            None => (None, "not set".to_owned()),
        },
    };
    let mut environments = Vec::new();
    if let Some(d_day) = d_day {
        let mut actuals = Vec::new();
        for (env, env_phases) in phases {
            actuals.push((*env, actual(control, *env, env_phases).await?));
        }
        environments = crate::domain::timeline::schedule(d_day, today, &actuals);
    }
    Ok(Timeline { d_day, source, today, environments })
}
