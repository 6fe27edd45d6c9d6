//! `sti-rollout bench`: the engine against the physical limit, measured in the same run.
//!
//! On fresh databases with N generated legacy rows, each round times: A, one `insert … select`
//! per subtype table of the same rows in one transaction (A_oc: the same with `on conflict do
//! nothing`); B, the engine's live backfill; E, the engine re-run over backfilled data; D, the
//! dry-run; R, the engine's rollback; C, the legacy script's OFFSET/LIMIT 1000 paging, sampled at
//! evenly spaced offsets and extrapolated (its cost grows with the offset, so a full run takes
//! minutes). Ratios are medians of per-round ratios; the machine is noisy, single rounds are not.

use super::CliError;
use crate::db::classify::{classified, Subtype};
use crate::db::seed::{seed, SeedMode};
use crate::db::{Database, DatabaseUrl, Dialect, Schema};
use crate::domain::environment::Environment;
use crate::domain::pacing::Pacing;
use crate::domain::run::RunKind;
use crate::engine::backfill::{self, Start};
use crate::engine::capture;
use crate::engine::{dry_run, EngineError};
use std::time::Instant;

/// What to measure.
/// `bench`'s flags.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Legacy rows to generate.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(1000..=50_000_000))]
    rows: i64,
    /// Rounds; ratios are medians over them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
    rounds: u64,
    /// The engine's chunk size.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=crate::domain::pacing::MAX_CHUNK))]
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
    /// Instead of the usual methods, time the engine with these numbers of parallel workers
    /// (PostgreSQL), each against A in the same round: `--workers 1,2,4`.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(i64).range(1..=crate::domain::pacing::MAX_WORKERS))]
    workers: Vec<i64>,
    /// With --workers: each number of workers also with deferred validation of the foreign keys.
    #[arg(long, requires = "workers")]
    deferred: bool,
}

impl From<BenchArgs> for BenchOptions {
    fn from(
        BenchArgs { rows, rounds, chunk, postgres, offset_samples, writes, workers, deferred }: BenchArgs,
    ) -> Self {
        let rounds = usize::try_from(rounds).unwrap_or(1);
        Self { postgres_url: postgres, rows, rounds, chunk, offset_samples, writes, workers, deferred }
    }
}

pub struct BenchOptions {
    pub postgres_url: Option<String>,
    pub rows: i64,
    pub rounds: usize,
    pub chunk: i64,
    pub offset_samples: i64,
    /// Single-row updates timed per round with the change capture off and on.
    pub writes: i64,
    /// The scale benchmark's numbers of workers (empty: the usual methods).
    pub workers: Vec<i64>,
    /// The scale benchmark also with deferred validation.
    pub deferred: bool,
}

const METHODS: [&str; 8] = ["A", "A_oc", "B", "Bc", "E", "D", "R", "C"];

pub async fn bench(options: BenchOptions) -> Result<(), CliError> {
    let fail = |e: EngineError| CliError::Engine { env: Environment::Dev, source: e };
    let scratch = std::env::temp_dir().join(format!("sti-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| CliError::Bench(e.to_string()))?;
    let (url, admin) = match &options.postgres_url {
        Some(server) => {
            let admin =
                Database::connect(&DatabaseUrl::parse(server).map_err(|e| CliError::Bench(e.to_string()))?)
                    .await
                    .map_err(|e| fail(e.into()))?;
            let name = format!("sti_bench_{}", std::process::id());
            sqlx::query(&format!("create database {name}"))
                .execute(admin.pool())
                .await
                .map_err(|e| fail(e.into()))?;
            let (base, _) = server.rsplit_once('/').unwrap_or((server, ""));
            (
                DatabaseUrl::parse(&format!("{base}/{name}")).map_err(|e| CliError::Bench(e.to_string()))?,
                Some((admin, name)),
            )
        }
        None => (DatabaseUrl::sqlite_file(&scratch.join("bench.db")), None),
    };
    let db = Database::open(&url, Schema::Target).await.map_err(|e| fail(e.into()))?;
    let result = if options.workers.is_empty() {
        measure(&db, &options).await
    } else {
        super::bench_scale::measure(&db, &options).await
    }
    .map_err(fail);
    db.close().await;
    if let Some((admin, name)) = admin {
        let _ = sqlx::query(&format!("drop database if exists {name}")).execute(admin.pool()).await;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Generates the legacy rows and says so; the engine's name.
pub(super) async fn generate(db: &Database, options: &BenchOptions) -> Result<&'static str, EngineError> {
    let engine = match db.dialect() {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    let started = Instant::now();
    seed(db, options.rows, SeedMode::Fresh, |_, _| {})
        .await
        .map_err(|e| EngineError::Corrupt(e.to_string()))?;
    if db.dialect() == Dialect::Postgres {
        sqlx::query("vacuum analyze projects").execute(db.pool()).await?;
    }
    println!(
        "{engine}: {} legacy rows generated in {:.1} s; chunk {}; {} rounds",
        options.rows,
        started.elapsed().as_secs_f64(),
        options.chunk,
        options.rounds
    );
    Ok(engine)
}

async fn measure(db: &Database, options: &BenchOptions) -> Result<(), EngineError> {
    let engine = generate(db, options).await?;
    println!("{:>5} {}", "round", METHODS.map(|m| format!("{m:>8}")).join(""));
    let mut seconds: Vec<[f64; 8]> = Vec::new();
    let mut writes: Vec<(f64, f64)> = Vec::new();
    let lock_timeout = std::time::Duration::from_secs(5);
    for round in 1..=options.rounds {
        let mut t = [0.0; 8];
        reset(db).await?;
        t[0] = timed(single_statement(db, false)).await?;
        reset(db).await?;
        t[1] = timed(single_statement(db, true)).await?;
        reset(db).await?;
        t[2] = timed(engine_backfill(db, options.chunk)).await?;
        // Bc: the same with the change capture installed and no application writes
        reset(db).await?;
        capture::install(db, lock_timeout).await?;
        t[3] = timed(engine_backfill(db, options.chunk)).await?;
        capture::remove(db, lock_timeout).await?;
        settle(db).await?;
        t[4] = timed(engine_backfill(db, options.chunk)).await?;
        settle(db).await?;
        t[5] = timed(async {
            dry_run::dry_run(
                db,
                None,
                Environment::Dev,
                Pacing::parse(options.chunk, 0, None)?,
                None,
                &mut |_, _| {},
            )
            .await
            .map(|_| ())
        })
        .await?;
        settle(db).await?;
        if options.writes > 0 {
            // the table backfilled, as a rollout in progress has it: writes off, then on
            let off = update_rate(db, options.writes, round as u64 * 2).await?;
            capture::install(db, lock_timeout).await?;
            let on = update_rate(db, options.writes, round as u64 * 2 + 1).await?;
            capture::remove(db, lock_timeout).await?;
            writes.push((off, on));
        }
        t[6] = timed(engine_rollback(db, options.chunk)).await?;
        reset(db).await?;
        t[7] = offset_paging(db, options.rows, options.offset_samples).await?;
        println!("{round:>5} {}", t.map(|s| format!("{s:>7.2}s")).join(""));
        seconds.push(t);
    }
    println!();
    println!(
        "median seconds and the median of per-round ratios to A (and to A_oc) — {engine}, {} rows",
        options.rows
    );
    for (i, method) in METHODS.iter().enumerate() {
        let secs = median(seconds.iter().map(|t| t[i]).collect());
        let to_a = median(seconds.iter().map(|t| t[i] / t[0]).collect());
        let to_a_oc = median(seconds.iter().map(|t| t[i] / t[1]).collect());
        println!(
            "  {method:<5} {secs:>8.2} s   {to_a:>6.2}× A   {to_a_oc:>6.2}× A_oc   {:>9.0} rows/s",
            options.rows as f64 / secs
        );
    }
    let b_c = median(seconds.iter().map(|t| t[3] / t[0]).collect())
        - median(seconds.iter().map(|t| t[2] / t[0]).collect());
    println!("  change capture installed, no writes: Bc − B = {b_c:+.3} in the ratio to A");
    if !writes.is_empty() {
        let off = median(writes.iter().map(|w| w.0).collect());
        let on = median(writes.iter().map(|w| w.1).collect());
        let ratio = median(writes.iter().map(|w| w.1 / w.0).collect());
        println!(
            "  single-row updates of identifying columns, {} per round: capture off {off:.0}/s, on {on:.0}/s, on/off {ratio:.2} (median of rounds)",
            options.writes
        );
    }
    println!("peak resident memory of this process: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}

/// Single-row updates per second: `n` autocommitted updates of the school name and grade of
/// rows spread over the table, each its own transaction, as an application writes.
async fn update_rate(db: &Database, n: i64, seed: u64) -> Result<f64, EngineError> {
    let high: i64 = sqlx::query_scalar("select cast(coalesce(max(id), 1) as bigint) from projects")
        .fetch_one(db.pool())
        .await?;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed;
    let started = Instant::now();
    for i in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let id = (state % high as u64) as i64 + 1;
        sqlx::query("update projects set school_name = $1, grade = $2 where id = $3")
            .bind(format!("Bench High {i}"))
            .bind(1 + (i % 13) as i32)
            .bind(id)
            .execute(db.pool())
            .await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

pub(super) async fn timed(
    work: impl std::future::Future<Output = Result<(), EngineError>>,
) -> Result<f64, EngineError> {
    let started = Instant::now();
    work.await?;
    Ok(started.elapsed().as_secs_f64())
}

/// A: every row in one transaction, one statement per subtype table, the same identification.
pub(super) async fn single_statement(db: &Database, on_conflict: bool) -> Result<(), EngineError> {
    let rows = classified();
    let high: i64 = sqlx::query_scalar("select max(id) from projects").fetch_one(db.pool()).await?;
    let mut tx = db.begin_write().await?;
    for subtype in Subtype::ALL {
        sqlx::query(&subtype.insert_from(&rows, "0", on_conflict))
            .bind(crate::domain::span::Span::ALL.first)
            .bind(high)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) fn start(chunk: i64) -> Result<Start, EngineError> {
    Ok(Start {
        env: Environment::Dev,
        started_by: "bench".into(),
        pacing: Pacing::parse(chunk, 0, None)?,
        resume_from: None,
        lease_ms: 60_000,
        policy: Default::default(),
        workers: 1,
        defer_fks: false,
    })
}

async fn engine_backfill(db: &Database, chunk: i64) -> Result<(), EngineError> {
    let held = backfill::begin(db, &start(chunk)?).await?;
    backfill::run(db, None, Environment::Dev, held, &mut |_, _| {}).await.map(|_| ())
}

async fn engine_rollback(db: &Database, chunk: i64) -> Result<(), EngineError> {
    // the bench has no control database: the flag check belongs to the CLI and the console
    let high: i64 =
        sqlx::query_scalar("select cast(coalesce(max(project_id), 0) as bigint) from school_projects")
            .fetch_one(db.pool())
            .await?;
    let held = backfill::begin_run(db, RunKind::Rollback, &start(chunk)?, high).await?;
    backfill::run(db, None, Environment::Dev, held, &mut |_, _| {}).await.map(|_| ())
}

/// C: pages of 1000 by OFFSET, as the legacy script read them, sampled at evenly spaced offsets
/// inside a transaction that is rolled back; the total is extrapolated from the mean page.
async fn offset_paging(db: &Database, rows: i64, samples: i64) -> Result<f64, EngineError> {
    let pages = (rows + 999) / 1000;
    let samples = samples.clamp(1, pages);
    let classified_rows = classified();
    let mut tx = db.begin_write().await?;
    let started = Instant::now();
    for k in 0..samples {
        let offset = k * pages / samples * 1000;
        let bounds = sqlx::query(
            "select cast(coalesce(min(id), 0) as bigint) as lo, cast(coalesce(max(id), 0) as bigint) as hi from (
                select id, title, owner_id, project_type, school_name, grade, pace, goal_date, created_at, updated_at
                from projects order by id limit 1000 offset $1) page",
        )
        .bind(offset)
        .fetch_one(&mut *tx)
        .await?;
        let (lo, hi): (i64, i64) = (sqlx::Row::try_get(&bounds, "lo")?, sqlx::Row::try_get(&bounds, "hi")?);
        for subtype in Subtype::ALL {
            sqlx::query(&subtype.insert_from(&classified_rows, "0", true))
                .bind(lo)
                .bind(hi)
                .execute(&mut *tx)
                .await?;
        }
    }
    let per_page = started.elapsed().as_secs_f64() / samples as f64;
    tx.rollback().await?;
    Ok(per_page * pages as f64)
}

/// Empties the subtype tables and the bookkeeping, and lets the database settle.
pub(super) async fn reset(db: &Database) -> Result<(), EngineError> {
    for table in [
        "school_projects",
        "self_study_projects",
        "sti_backfill_dead_letters",
        "sti_backfill_chunks",
        "sti_backfill_slices",
        "sti_backfill_runs",
    ] {
        sqlx::query(&format!("delete from {table}")).execute(db.pool()).await?;
    }
    if db.dialect() == Dialect::Postgres {
        // projects too, frozen: the foreign-key checks of a backfill leave a lock on every legacy
        // row, and the method after it paid for clearing them (the first benchmark of the change
        // capture measured the backfill after B 1.5 times slower for it); frozen, every method
        // starts from the same table
        sqlx::query("vacuum (freeze) projects, school_projects, self_study_projects")
            .execute(db.pool())
            .await?;
    }
    settle(db).await
}

/// A checkpoint, so one method's dirty pages are not written during the next one's timing.
async fn settle(db: &Database) -> Result<(), EngineError> {
    let sql = match db.dialect() {
        Dialect::Sqlite => "pragma wal_checkpoint(truncate)",
        Dialect::Postgres => "checkpoint",
    };
    if let Err(error) = sqlx::query(sql).execute(db.pool()).await {
        tracing::warn!(%error, "checkpoint refused; timings include background writes");
    }
    Ok(())
}

pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The process's peak resident set (VmHWM), in KiB.
pub(super) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
