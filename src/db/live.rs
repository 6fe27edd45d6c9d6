//! The environment page's figures, from the control database's mirror: the newest run, its
//! ledger thinned to chart points, rate and ETA, the last verification, and the run history.
//! All of it indexed reads; nothing counts the target's tables.

use super::control::{self, ENABLE_STI};
use super::Database;
use crate::domain::environment::Environment;
use crate::domain::health::{Health, Pace};
use crate::domain::incident::Incident;
use crate::domain::live::{
    chart_points, CaptureChange, ChartMark, ChunkPoint, FlagChange, LastDryRun, LiveView, RunView, TakeOver,
    VerificationView, MAX_CHART_POINTS,
};
use crate::domain::run::{Hold, HoldKind, RunKind, RunRequest, RunState};
use sqlx::any::AnyRow;
use sqlx::Row;

const RUN_COLUMNS: &str = "run_id, kind, state, requested, started_by, chunk_size, pause_ms, low_id, high_id,
    checkpoint, chunks, rows_read, school_created, self_study_created, school_skipped, self_study_skipped,
    errors, error, created_at, updated_at, finished_at, lease_expires_at, rows_expected, hold_kind, hold_reason, hold_label,
    hold_since, hold_next_try, hold_tries, hold_gives_up_at, workers, fk_validation_ms, lease_ms";

fn corrupt(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} '{value}' in the control database").into())
}

fn run_from_row(row: &AnyRow) -> Result<RunView, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let requested: Option<String> = row.try_get("requested")?;
    Ok(RunView {
        id: row.try_get("run_id")?,
        kind: RunKind::parse(&kind).ok_or_else(|| corrupt("run kind", &kind))?,
        state: RunState::parse(&state).ok_or_else(|| corrupt("run state", &state))?,
        requested: requested.as_deref().and_then(RunRequest::parse),
        started_by: row.try_get("started_by")?,
        chunk_size: row.try_get("chunk_size")?,
        pause_ms: row.try_get("pause_ms")?,
        low_id: row.try_get("low_id")?,
        high_id: row.try_get("high_id")?,
        checkpoint: row.try_get("checkpoint")?,
        chunks: row.try_get("chunks")?,
        rows_read: row.try_get("rows_read")?,
        school_created: row.try_get("school_created")?,
        self_study_created: row.try_get("self_study_created")?,
        school_skipped: row.try_get("school_skipped")?,
        self_study_skipped: row.try_get("self_study_skipped")?,
        errors: row.try_get("errors")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        lease_ms: row.try_get("lease_ms")?,
        rows_expected: row.try_get("rows_expected")?,
        workers: row.try_get("workers")?,
        fk_validation_ms: row.try_get("fk_validation_ms")?,
        hold: match row.try_get::<Option<String>, _>("hold_kind")?.as_deref().and_then(HoldKind::parse) {
            Some(kind) => Some(Hold {
                kind,
                reason: row.try_get::<Option<String>, _>("hold_reason")?.unwrap_or_default(),
                label: row.try_get::<Option<String>, _>("hold_label")?.unwrap_or_default(),
                since_ms: row.try_get::<Option<i64>, _>("hold_since")?.unwrap_or_default(),
                next_try_ms: row.try_get::<Option<i64>, _>("hold_next_try")?.unwrap_or_default(),
                tries: row.try_get::<Option<i64>, _>("hold_tries")?.unwrap_or_default(),
                gives_up_at_ms: row.try_get("hold_gives_up_at")?,
            }),
            None => None,
        },
    })
}

/// The environment's runs, newest first.
pub async fn history(control: &Database, env: Environment, limit: i64) -> Result<Vec<RunView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "select {RUN_COLUMNS} from runs where environment = $1 order by run_id desc limit $2"
    ))
    .bind(env.as_str())
    .bind(limit)
    .fetch_all(control.pool())
    .await?;
    rows.iter().map(run_from_row).collect()
}

/// One run's mirrored ledger, in chunk order.
pub async fn chunks(
    control: &Database,
    env: Environment,
    run_id: i64,
) -> Result<Vec<ChunkPoint>, sqlx::Error> {
    last_chunks(control, env, run_id, i64::MAX).await
}

/// The last `n` chunks of a run's mirrored ledger, oldest first: what a recent rate needs
/// ([`crate::domain::health::RATE_WINDOW`]) without reading a long run's whole ledger.
pub async fn last_chunks(
    control: &Database,
    env: Environment,
    run_id: i64,
    n: i64,
) -> Result<Vec<ChunkPoint>, sqlx::Error> {
    let rows = sqlx::query(
        "select * from (
            select chunk_no, from_id, to_id, rows_read, school_created, self_study_created, errors, duration_ms,
                committed_at
            from run_chunks where environment = $1 and run_id = $2 order by chunk_no desc limit $3) recent
         order by chunk_no",
    )
    .bind(env.as_str())
    .bind(run_id)
    .bind(n)
    .fetch_all(control.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ChunkPoint {
                chunk_no: row.try_get("chunk_no")?,
                from_id: row.try_get("from_id")?,
                to_id: row.try_get("to_id")?,
                rows_read: row.try_get("rows_read")?,
                school_created: row.try_get("school_created")?,
                self_study_created: row.try_get("self_study_created")?,
                errors: row.try_get("errors")?,
                duration_ms: row.try_get("duration_ms")?,
                committed_at: row.try_get("committed_at")?,
            })
        })
        .collect()
}

/// The environment's newest verification.
pub async fn last_verification(
    control: &Database,
    env: Environment,
) -> Result<Option<VerificationView>, sqlx::Error> {
    let row = sqlx::query(
        "select id, case when ok then 1 else 0 end as ok, ranges, mismatched_ranges, legacy_school,
            legacy_self_study, school_rows, self_study_rows, mismatched_ids, duration_ms, created_at
         from verifications where environment = $1 order by id desc limit 1",
    )
    .bind(env.as_str())
    .fetch_optional(control.pool())
    .await?;
    row.map(|row| {
        let ids: String = row.try_get("mismatched_ids")?;
        Ok(VerificationView {
            id: row.try_get("id")?,
            ok: row.try_get::<i64, _>("ok")? == 1,
            ranges: row.try_get("ranges")?,
            mismatched_ranges: row.try_get("mismatched_ranges")?,
            legacy_school: row.try_get("legacy_school")?,
            legacy_self_study: row.try_get("legacy_self_study")?,
            school_rows: row.try_get("school_rows")?,
            self_study_rows: row.try_get("self_study_rows")?,
            mismatched_ids: serde_json::from_str(&ids).map_err(|e| sqlx::Error::Decode(e.into()))?,
            duration_ms: row.try_get("duration_ms")?,
            created_at: row.try_get("created_at")?,
        })
    })
    .transpose()
}

/// What changes when anything on the environment page changes: cheap to poll.
pub async fn fingerprint(control: &Database, env: Environment) -> Result<String, sqlx::Error> {
    let row = sqlx::query(
        "select (select coalesce(max(updated_at), 0) from runs where environment = $1) as run,
                (select coalesce(max(coalesce(hold_next_try, 0)), 0) from runs where environment = $1) as held,
                (select coalesce(max(run_id), 0) from runs where environment = $1) as run_id,
                (select coalesce(max(id), 0) from verifications where environment = $1) as verification,
                (select coalesce(max(updated_at), '') from flags where environment = $1) as flag,
                (select coalesce(max(id), 0) from audit_log) as audited",
    )
    .bind(env.as_str())
    .fetch_one(control.pool())
    .await?;
    Ok(format!(
        "{}/{}/{}/{}/{}/{}",
        row.try_get::<i64, _>("run")?,
        row.try_get::<i64, _>("held")?,
        row.try_get::<i64, _>("run_id")?,
        row.try_get::<i64, _>("verification")?,
        row.try_get::<String, _>("flag")?,
        row.try_get::<i64, _>("audited")?
    ))
}

/// The flag's changes in `env`, newest first, from the audit log.
pub async fn flag_history(control: &Database, env: Environment) -> Result<Vec<FlagChange>, sqlx::Error> {
    let rows = sqlx::query(
        "select at, actor, action, after, reason from audit_log
         where environment = $1 and action in ('flag.set', 'emergency_stop') order by id desc limit 20",
    )
    .bind(env.as_str())
    .fetch_all(control.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let after = json_column(row, "after")?;
            Ok(FlagChange {
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                enabled: after["enabled"].as_bool().or(after["ENABLE_STI"].as_bool()).unwrap_or(false),
                reason: row.try_get("reason")?,
            })
        })
        .collect()
}

/// The change capture's newest installation or removal in `env`, from the audit log.
pub async fn capture(control: &Database, env: Environment) -> Result<Option<CaptureChange>, sqlx::Error> {
    let row = sqlx::query(
        "select at, actor, action, after from audit_log
         where environment = $1 and action in ('capture.install', 'capture.remove') order by id desc limit 1",
    )
    .bind(env.as_str())
    .fetch_optional(control.pool())
    .await?;
    row.map(|row| {
        let after = json_column(&row, "after")?;
        Ok(CaptureChange {
            on: row.try_get::<String, _>("action")? == "capture.install",
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            lock_timeout_ms: after["lock_timeout_ms"].as_i64(),
        })
    })
    .transpose()
}

/// The newest emergency stop in `env` that nobody acknowledged since, from the audit log.
/// `capture` is the environment's newest capture change as the caller read it (whether the
/// incident says the capture stays installed); `None` when it does not matter.
pub async fn incident(
    control: &Database,
    env: Environment,
    capture: Option<&CaptureChange>,
) -> Result<Option<Incident>, sqlx::Error> {
    let row = sqlx::query(
        "select s.id, s.at, s.actor, s.before, s.reason from audit_log s
         where s.action = 'emergency_stop' and s.environment = $1
           and not exists (select 1 from audit_log k
                           where k.action = $2 and k.environment = $1 and k.id > s.id)
         order by s.id desc limit 1",
    )
    .bind(env.as_str())
    .bind(crate::domain::incident::ACKNOWLEDGE)
    .fetch_optional(control.pool())
    .await?;
    row.map(|row| {
        let before = json_column(&row, "before")?;
        Ok::<_, sqlx::Error>(Incident {
            id: row.try_get("id")?,
            environment: env,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            reason: row.try_get::<Option<String>, _>("reason")?.unwrap_or_default(),
            cancelled_run: before["active_run"].as_i64(),
            flag_was_on: before["ENABLE_STI"].as_bool().unwrap_or(false),
            capture_installed: capture.is_some_and(|c| c.on),
        })
    })
    .transpose()
}

/// What happened to `run` while it ran, from the audit log, oldest first: the charts' marks.
pub async fn marks(
    control: &Database,
    env: Environment,
    run: &RunView,
) -> Result<Vec<ChartMark>, sqlx::Error> {
    let rows = sqlx::query(
        "select at, action, after from audit_log
         where environment = $1 and at >= $2 and at <= $3
           and action in ('run.pause', 'run.resume', 'run.cancel', 'run.pace', 'run.take_over', 'flag.set',
                          'emergency_stop')
         order by id limit 60",
    )
    .bind(env.as_str())
    .bind(run.created_at)
    .bind(run.finished_at.unwrap_or(i64::MAX))
    .fetch_all(control.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let after = json_column(row, "after")?;
            let at: i64 = row.try_get("at")?;
            let label = match row.try_get::<String, _>("action")?.as_str() {
                "run.pause" => "paused".to_owned(),
                "run.resume" => "resumed".to_owned(),
                "run.cancel" => "cancel asked".to_owned(),
                "run.pace" => match after["chunk_size"].as_i64() {
                    Some(rows) => format!("pacing {rows} rows"),
                    None => "pacing".to_owned(),
                },
                "run.take_over" => "taken over".to_owned(),
                "flag.set" if after["enabled"].as_bool() == Some(true) => "flag on".to_owned(),
                "flag.set" => "flag off".to_owned(),
                _ => "emergency stop".to_owned(),
            };
            Ok(ChartMark { seconds: (at - run.created_at).max(0) as f64 / 1000.0, label })
        })
        .collect()
}

/// The newest dry-run in `env` that kept its report, from the audit log.
pub async fn last_dry_run(control: &Database, env: Environment) -> Result<Option<LastDryRun>, sqlx::Error> {
    let row = sqlx::query(
        "select at, actor, after from audit_log
         where action = 'dry_run' and environment = $1 order by id desc limit 1",
    )
    .bind(env.as_str())
    .fetch_optional(control.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let report = serde_json::from_value(json_column(&row, "after")?["report"].take()).ok();
    Ok(match report {
        Some(report) => Some(LastDryRun { actor: row.try_get("actor")?, at: row.try_get("at")?, report }),
        // a dry-run from before reports were kept
        None => None,
    })
}

/// The forecast run `run_id` of `env` started with (seconds), from its `run.start` entry.
pub async fn run_forecast(
    control: &Database,
    env: Environment,
    run_id: i64,
) -> Result<Option<f64>, sqlx::Error> {
    let rows = sqlx::query(
        "select after from audit_log
         where action = 'run.start' and environment = $1 order by id desc limit 20",
    )
    .bind(env.as_str())
    .fetch_all(control.pool())
    .await?;
    for row in &rows {
        let after = json_column(row, "after")?;
        if after["run_id"].as_i64() == Some(run_id) {
            return Ok(after["forecast_seconds"].as_f64());
        }
    }
    Ok(None)
}

/// The take-overs of `env`'s recent runs, oldest first, from the audit log.
pub async fn take_overs(control: &Database, env: Environment) -> Result<Vec<TakeOver>, sqlx::Error> {
    let rows = sqlx::query(
        "select at, actor, after from audit_log
         where action = 'run.take_over' and environment = $1 order by id desc limit 100",
    )
    .bind(env.as_str())
    .fetch_all(control.pool())
    .await?;
    let mut out = rows
        .iter()
        .map(|row| {
            let after = json_column(row, "after")?;
            Ok(TakeOver {
                run_id: after["run_id"].as_i64().unwrap_or_default(),
                actor: row.try_get("actor")?,
                at: row.try_get("at")?,
                checkpoint: after["checkpoint"].as_i64().unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    out.reverse();
    Ok(out)
}

/// An audit entry's JSON column (`before`, `after`); `null` when empty or not JSON.
fn json_column(row: &AnyRow, column: &str) -> Result<serde_json::Value, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    Ok(text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default())
}

/// Everything the page updates live.
pub async fn read(control: &Database, env: Environment) -> Result<LiveView, sqlx::Error> {
    let flag_on = control::flag(control, env, ENABLE_STI)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
        .is_some_and(|f| f.enabled);
    let read_at = super::now_ms();
    let history = history(control, env, crate::domain::live::HISTORY).await?;
    let run = history.first().cloned();
    let marks = match &run {
        Some(run) => marks(control, env, run).await?,
        None => Vec::new(),
    };
    let capture = capture(control, env).await?;
    // the stop says whether the capture stays from the capture this view shows
    let incident = incident(control, env, capture.as_ref()).await?;
    let run_forecast_seconds = match &run {
        Some(run) => run_forecast(control, env, run.id).await?,
        None => None,
    };
    let (chart, rows_per_second, eta_seconds) = match &run {
        Some(run) => {
            let ledger = chunks(control, env, run.id).await?;
            let pace = Pace::of(run, &Health::of(run, read_at), &ledger);
            (chart_points(run.created_at, &ledger, MAX_CHART_POINTS), pace.rows_per_second, pace.eta_seconds)
        }
        None => (Vec::new(), None, None),
    };
    Ok(LiveView {
        environment: env,
        flag_on,
        run,
        chart,
        charts: Default::default(),
        rows_per_second,
        eta_seconds,
        verification: last_verification(control, env).await?,
        history,
        phases: super::rollout::phases(control, env).await?,
        gate_closed: super::rollout::backfill_gate(control, env).await?.err(),
        checklist: super::checklist::entries(control, env).await?,
        flag_history: flag_history(control, env).await?,
        capture,
        incident,
        take_overs: take_overs(control, env).await?,
        last_dry_run: last_dry_run(control, env).await?,
        run_forecast_seconds,
        marks,
        read_at,
    })
}
