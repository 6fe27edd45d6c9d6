//! `--dry-run` of `backfill`, `rollback` and `reconcile`: what a live run would do, with
//! nothing written.

use super::backfill::RunOptions;
use super::progress::Reporter;
use super::CliError;
use crate::db::Database;
use crate::domain::environment::Environment;
use crate::domain::format::format_count;
use crate::engine::{operate, rollback};
use serde_json::json;

pub async fn backfill(control: &Database, target: &Database, options: RunOptions) -> Result<(), CliError> {
    let env = options.env;
    let mut reporter = Reporter::new(format!("{env} dry-run"), options.resume_from.unwrap_or(0));
    let mut rows = 0;
    let report = operate::dry_run(
        control,
        target,
        env,
        &super::actor(),
        options.pacing,
        options.resume_from,
        &mut |checkpoint, high| {
            rows = checkpoint;
            reporter.update(checkpoint, high, rows);
        },
    )
    .await
    .map_err(|source| CliError::Engine { env, source })?;
    reporter.finish();
    if options.json {
        println!("{}", json!(report));
        return Ok(());
    }
    println!(
        "{env} dry-run over ids ({}, {}] in {} chunks, {} rows read — nothing written",
        report.low_id,
        report.high_id,
        report.chunks,
        format_count(report.rows_read)
    );
    println!(
        "  would create   school {:>12}   self-study {:>12}",
        format_count(report.would_create.school),
        format_count(report.would_create.self_study)
    );
    println!(
        "  would skip     school {:>12}   self-study {:>12}   (already present)",
        format_count(report.would_skip.school),
        format_count(report.would_skip.self_study)
    );
    println!("  would reject   {:>12}", format_count(report.would_reject));
    for (reason, n) in &report.reasons {
        println!("    {reason:<22} {:>10}", format_count(*n));
    }
    println!(
        "  took {:.1} s; a live run would take about {:.1} s ({} rate)",
        report.duration_ms as f64 / 1000.0,
        report.estimated_live_seconds,
        report.estimate_basis
    );
    Ok(())
}

pub async fn reconcile(
    control: &Database,
    target: &Database,
    env: Environment,
    json: bool,
) -> Result<(), CliError> {
    let plan = crate::engine::reconcile::plan(control, target, env)
        .await
        .map_err(|source| CliError::Engine { env, source })?;
    if json {
        println!("{}", json!({ "plan": plan }));
    } else {
        println!(
            "{env} reconcile dry-run — nothing written: {} ids from verification #{} would be re-copied{}",
            format_count(plan.ids.len() as i64),
            plan.verification_id,
            if plan.truncated { " (it found more: verify again after the reconcile)" } else { "" }
        );
        let shown: Vec<String> = plan.ids.iter().take(50).map(i64::to_string).collect();
        println!("  {}{}", shown.join(" "), if plan.ids.len() > 50 { " …" } else { "" });
    }
    Ok(())
}

pub async fn rollback(
    control: &Database,
    target: &Database,
    env: Environment,
    json: bool,
) -> Result<(), CliError> {
    let engine_error = |source| CliError::Engine { env, source };
    let flag = rollback::ensure_flag_off(control, env).await;
    let plan = rollback::plan(target, env).await.map_err(engine_error)?;
    if json {
        println!("{}", json!({ "plan": plan, "refused": flag.as_ref().err().map(ToString::to_string) }));
    } else {
        println!("{env} rollback dry-run — nothing deleted");
        println!(
            "  would delete   school {:>12}   self-study {:>12}",
            format_count(plan.school),
            format_count(plan.self_study)
        );
        println!("  would keep     {:>12} rows the application wrote", format_count(plan.kept));
        if let Err(e) = &flag {
            println!("  a live rollback would be refused now: {e}");
        }
    }
    Ok(())
}
