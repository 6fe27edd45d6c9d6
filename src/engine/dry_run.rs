//! Dry-run: the same chunks and the same identification as a live run, read-only. It reports
//! what a live run would create, skip and reject, and how long it would take. It writes nothing
//! to the target database — not even a rolled-back insert, which on PostgreSQL costs as much as
//! the real run and leaves dead rows behind.

use super::EngineError;
use crate::db::classify::classified;
use crate::db::{target, Database, Dialect};
use crate::domain::environment::Environment;
use crate::domain::forecast::paced_seconds;
use crate::domain::pacing::Pacing;
use crate::domain::span::{self, Span};
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::Instant;

/// Rows per second a live backfill reaches when the control database has no history yet:
/// the medians measured on the reference machine (shared/reference/backfill-baseline.md).
const BASELINE_ROWS_PER_SECOND_SQLITE: f64 = 600_000.0;
const BASELINE_ROWS_PER_SECOND_POSTGRES: f64 = 100_000.0;

pub use crate::domain::reports::{DryRunReport, PerType};

/// Walks `(resume_from, max id]` in chunks of `chunk_size`, read-only.
pub async fn dry_run(
    db: &Database,
    control: Option<&Database>,
    env: Environment,
    pacing: Pacing,
    resume_from: Option<i64>,
    progress: &mut (dyn FnMut(i64, i64) + Send),
) -> Result<DryRunReport, EngineError> {
    let chunk_size = pacing.chunk_size;
    let started = Instant::now();
    let high = span::end(target::max_project_id(db).await?.unwrap_or(0));
    let low = match resume_from {
        Some(from) if from < 0 => return Err(EngineError::NegativeResume(from)),
        Some(from) if from > high => return Err(EngineError::ResumeBeyondEnd { given: from, last: high }),
        Some(from) => from,
        None => super::keys::start_before(db, &[super::keys::LEGACY]).await?,
    };
    // rows already in a subtype table are skipped, exactly as a live run counts them; only the
    // others need identifying. The anti-joins repeat the chunk's bounds so that PostgreSQL scans
    // a key range of each subtype table, not all of it, per chunk.
    let present_sql = "select (select count(*) from school_projects where project_id >= $1 and project_id <= $2) as school,
            (select count(*) from self_study_projects where project_id >= $1 and project_id <= $2) as self_study,
            (select count(*) from projects where id >= $1 and id <= $2) as rows_read";
    let verdicts_sql = format!(
        "select verdict, count(*) as n from {} c
         where not exists (select 1 from school_projects s
                           where s.project_id = c.id and s.project_id >= $1 and s.project_id <= $2)
           and not exists (select 1 from self_study_projects s
                           where s.project_id = c.id and s.project_id >= $1 and s.project_id <= $2)
         group by verdict",
        classified()
    );
    let mut report = DryRunReport {
        environment: env,
        low_id: low,
        high_id: high,
        chunks: 0,
        rows_read: 0,
        would_create: PerType::default(),
        would_skip: PerType::default(),
        would_reject: 0,
        reasons: BTreeMap::new(),
        duration_ms: 0,
        estimated_live_seconds: 0.0,
        rows_per_second: 0.0,
        estimate_basis: String::new(),
    };
    let mut from = low;
    while from < high {
        let to = super::keys::chunk_end(db, &[super::keys::LEGACY], from, chunk_size, high).await?;
        let span = Span::after(from, to);
        let present = sqlx::query(present_sql).bind(span.first).bind(span.last).fetch_one(db.pool()).await?;
        report.would_skip.school += present.try_get::<i64, _>("school")?;
        report.would_skip.self_study += present.try_get::<i64, _>("self_study")?;
        report.rows_read += present.try_get::<i64, _>("rows_read")?;
        for row in sqlx::query(&verdicts_sql).bind(span.first).bind(span.last).fetch_all(db.pool()).await? {
            let verdict: String = row.try_get("verdict")?;
            let n: i64 = row.try_get("n")?;
            match verdict.as_str() {
                "school" => report.would_create.school += n,
                "self_study" => report.would_create.self_study += n,
                reason => {
                    report.would_reject += n;
                    *report.reasons.entry(reason.trim_start_matches("x:").to_owned()).or_default() += n;
                }
            }
        }
        report.chunks += 1;
        from = to;
        progress(from, high);
    }
    report.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (rate, basis) = match history_rate(control).await {
        Some(rate) => (rate, "history"),
        None => match db.dialect() {
            Dialect::Sqlite => (BASELINE_ROWS_PER_SECOND_SQLITE, "baseline"),
            Dialect::Postgres => (BASELINE_ROWS_PER_SECOND_POSTGRES, "baseline"),
        },
    };
    // the copy at the measured rate, and the pause entered after every chunk
    report.estimated_live_seconds = paced_seconds(report.rows_read, rate, chunk_size, pacing.pause_ms);
    report.estimate_basis = basis.to_owned();
    report.rows_per_second = rate;
    Ok(report)
}

/// Rows per second of past live backfill chunks that created rows, from the mirrored ledger.
async fn history_rate(control: Option<&Database>) -> Option<f64> {
    let control = control?;
    let row = sqlx::query(
        "select cast(coalesce(sum(c.rows_read), 0) as bigint) as rows_read,
                cast(coalesce(sum(c.duration_ms), 0) as bigint) as ms
         from run_chunks c join runs r on r.environment = c.environment and r.run_id = c.run_id
         where r.kind = 'backfill' and c.created > 0",
    )
    .fetch_one(control.pool())
    .await
    .ok()?;
    let rows: i64 = row.try_get("rows_read").ok()?;
    let ms: i64 = row.try_get("ms").ok()?;
    (rows >= 10_000 && ms > 0).then(|| rows as f64 * 1000.0 / ms as f64)
}
