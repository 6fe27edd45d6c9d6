//! `verify` and `runs`: what an environment's subtype tables hold against the legacy rows,
//! and its runs.

use super::progress::Reporter;
use super::CliError;
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::format::{clock_ms, format_count};
use crate::domain::health::Health;
use crate::engine::operate;
use crate::engine::runs::{self};
use crate::server::config::Config;
use crate::server::startup::open_control_and_target;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The environment: dev, staging or prod.
    #[arg(long)]
    env: Environment,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn verify(config: &Config, VerifyArgs { env, json }: VerifyArgs) -> Result<(), CliError> {
    let (control, target) = open_control_and_target(config, env).await?;
    check(&control, &target, env, json).await
}

#[derive(clap::Args, Debug)]
pub struct RunsArgs {
    /// The environment: dev, staging or prod.
    #[arg(long)]
    env: Environment,
    /// How many runs to show.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    limit: i64,
    /// Print the runs as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn runs(config: &Config, RunsArgs { env, limit, json }: RunsArgs) -> Result<(), CliError> {
    let (control, target) = open_control_and_target(config, env).await?;
    list(&control, &target, env, limit, json).await
}

async fn check(control: &Database, target: &Database, env: Environment, json: bool) -> Result<(), CliError> {
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

/// The runs with their health, as the console says it: the target's runs, the database's clock,
/// and the hold of an active run from the mirror (only the runner and the mirror know it).
async fn list(
    control: &Database,
    target: &Database,
    env: Environment,
    limit: i64,
    json: bool,
) -> Result<(), CliError> {
    let engine = |source| CliError::Engine { env, source };
    let runs = runs::list(target, limit).await.map_err(engine)?;
    let now = runs::database_now(target).await.map_err(engine)?;
    let mirrored = crate::db::live::history(control, env, 1).await.ok().and_then(|mut v| v.pop());
    let health = |run: &runs::RunRecord| {
        let mut view = run.view();
        if let Some(m) = mirrored.as_ref().filter(|m| m.id == run.id) {
            view.hold = m.hold.clone();
        }
        Health::of(&view, now)
    };
    if json {
        let listed: Vec<_> = runs
            .iter()
            .map(|run| {
                let mut value = json!(run);
                value["health"] = json!(health(run).as_str());
                value
            })
            .collect();
        println!("{}", json!(listed));
        return Ok(());
    }
    if runs.is_empty() {
        println!("{env}: no runs yet");
        return Ok(());
    }
    println!(
        "{:>5}  {:<8}  {:<11}  {:>23}  {:>11}  {:>11}  {:>7}  started by",
        "run", "kind", "health", "checkpoint / last id", "created", "skipped", "errors"
    );
    let mut said = Vec::new();
    for run in runs {
        let health = health(&run);
        if matches!(health, Health::Waiting(_) | Health::Throttled(_) | Health::RunnerLost { .. }) {
            said.push(format!(
                "run #{}: {}",
                run.id,
                health.describe(now, |ms| format!("{} UTC", clock_ms(ms)))
            ));
        }
        println!(
            "{:>5}  {:<8}  {:<11}  {:>23}  {:>11}  {:>11}  {:>7}  {}",
            run.id,
            run.kind.as_str(),
            health.label(),
            format!("{} / {}", format_count(run.checkpoint), format_count(run.high_id)),
            format_count(run.created()),
            format_count(run.skipped()),
            format_count(run.errors),
            run.started_by
        );
    }
    for line in said {
        println!("{line}");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct BlockersArgs {
    /// The environment: dev, staging or prod.
    #[arg(long)]
    env: Environment,
    /// Print the sessions as JSON.
    #[arg(long)]
    json: bool,
}

/// The target's sessions that may hold a waiting run up, the blocking ones first.
pub async fn blockers(config: &Config, BlockersArgs { env, json }: BlockersArgs) -> Result<(), CliError> {
    use crate::domain::blockers::Blockers;
    let (_, target) = open_control_and_target(config, env).await?;
    let found =
        crate::engine::blockers::list(&target).await.map_err(|source| CliError::Engine { env, source })?;
    if json {
        println!("{}", json!(found));
        return Ok(());
    }
    let sessions = match found {
        Blockers::Unknown(what) => {
            println!("{env}: {what}");
            return Ok(());
        }
        Blockers::Sessions(sessions) if sessions.is_empty() => {
            println!("{env}: no other session holds a lock on projects or the subtype tables");
            return Ok(());
        }
        Blockers::Sessions(sessions) => sessions,
    };
    println!(
        "{:>7}  {:<8}  {:<12}  {:<20}  {:<20}  {:>9}  {:<18}  statement",
        "pid", "blocking", "user", "application", "state", "xact age", "waits for"
    );
    for s in sessions {
        println!(
            "{:>7}  {:<8}  {:<12}  {:<20}  {:<20}  {:>9}  {:<18}  {}",
            s.pid,
            if s.blocking { "yes" } else { "-" },
            s.user,
            s.application,
            s.state,
            s.transaction_ms
                .map_or("-".into(), |ms| crate::domain::format::format_duration(ms as f64 / 1000.0)),
            s.wait.unwrap_or_else(|| "-".into()),
            s.query
        );
    }
    Ok(())
}
