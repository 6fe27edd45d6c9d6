//! `sti-rollout bench --workers 1,2,4 [--deferred]`: the engine with parallel workers, and with
//! deferred validation of the foreign keys, each against A — one `insert … select` per subtype
//! table of the same rows in one transaction — measured in the same round. Besides the time,
//! each method's WAL (`pg_stat_wal`), where most of a backfill's cost on PostgreSQL shows.

use super::bench::{generate, median, peak_rss_kib, reset, single_statement, start, BenchOptions};
use crate::db::{Database, Dialect};
use crate::domain::environment::Environment;
use crate::domain::run::RunKind;
use crate::engine::backfill::{self, Start};
use crate::engine::EngineError;
use std::time::Instant;

/// One method of the round: a name, and how many workers with or without deferred validation
/// (`None`: A).
struct Method {
    name: String,
    engine: Option<(i64, bool)>,
}

fn methods(options: &BenchOptions) -> Vec<Method> {
    let mut methods = vec![Method { name: "A".into(), engine: None }];
    for &workers in &options.workers {
        methods.push(Method { name: format!("W{workers}"), engine: Some((workers, false)) });
        if options.deferred {
            methods.push(Method { name: format!("W{workers}d"), engine: Some((workers, true)) });
        }
    }
    methods
}

/// What one method took: seconds, WAL bytes, and the validation's milliseconds when deferred.
#[derive(Clone, Copy, Default)]
struct Taken {
    seconds: f64,
    wal: f64,
    validation_ms: Option<i64>,
}

async fn wal_bytes(db: &Database) -> Result<f64, EngineError> {
    if db.dialect() != Dialect::Postgres {
        return Ok(0.0);
    }
    let bytes: i64 =
        sqlx::query_scalar("select cast(wal_bytes as bigint) from pg_stat_wal").fetch_one(db.pool()).await?;
    Ok(bytes as f64)
}

async fn engine(
    db: &Database,
    chunk: i64,
    workers: i64,
    defer_fks: bool,
) -> Result<Option<i64>, EngineError> {
    let start = Start { workers, defer_fks, ..start(chunk)? };
    let held = backfill::begin(db, &start).await?;
    let run = backfill::run(db, None, Environment::Dev, held, &mut |_, _| {}).await?;
    Ok(run.fk_validation_ms)
}

pub(super) async fn measure(db: &Database, options: &BenchOptions) -> Result<(), EngineError> {
    for &workers in &options.workers {
        crate::engine::workers::check(db.dialect(), RunKind::Backfill, workers)?;
    }
    if options.deferred {
        crate::engine::deferred::check(db.dialect(), RunKind::Backfill)?;
    }
    let engine_name = generate(db, options).await?;
    let methods = methods(options);
    println!("{:>5} {}", "round", methods.iter().map(|m| format!("{:>8}", m.name)).collect::<String>());
    let mut rounds: Vec<Vec<Taken>> = Vec::new();
    for round in 1..=options.rounds {
        let mut taken = Vec::new();
        for method in &methods {
            reset(db).await?;
            let wal = wal_bytes(db).await?;
            let started = Instant::now();
            let validation_ms = match method.engine {
                None => {
                    single_statement(db, false).await?;
                    None
                }
                Some((workers, deferred)) => engine(db, options.chunk, workers, deferred).await?,
            };
            let seconds = started.elapsed().as_secs_f64();
            taken.push(Taken { seconds, wal: wal_bytes(db).await? - wal, validation_ms });
        }
        println!("{round:>5} {}", taken.iter().map(|t| format!("{:>7.2}s", t.seconds)).collect::<String>());
        rounds.push(taken);
    }
    println!();
    println!(
        "median seconds, the median of per-round ratios to A, and WAL — {engine_name}, {} rows, chunk {}",
        options.rows, options.chunk
    );
    for (i, method) in methods.iter().enumerate() {
        let seconds = median(rounds.iter().map(|r| r[i].seconds).collect());
        let ratio = median(rounds.iter().map(|r| r[i].seconds / r[0].seconds).collect());
        let wal = median(rounds.iter().map(|r| r[i].wal).collect()) / 1e6;
        let validation =
            rounds.iter().filter_map(|r| r[i].validation_ms).map(|ms| ms as f64 / 1000.0).collect::<Vec<_>>();
        let validation = if validation.is_empty() {
            String::new()
        } else {
            format!("   validation {:.2} s", median(validation))
        };
        println!(
            "  {:<5} {seconds:>8.2} s   {ratio:>6.2}× A   {:>9.0} rows/s   WAL {wal:>7.0} MB{validation}",
            method.name,
            options.rows as f64 / seconds
        );
    }
    println!("peak resident memory of this process: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}
