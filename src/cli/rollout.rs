//! `timeline` and `flag`: the rollout's calendar, and `ENABLE_STI` in one environment.

use super::{actor, CliError};
use crate::db::Database;
use crate::domain::calendar::Day;
use crate::domain::environment::Environment;
use crate::server::config::Config;
use crate::server::startup::open_control;

#[derive(clap::Args, Debug)]
pub struct TimelineArgs {
    /// The new D-day.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = Day::parse, conflicts_with = "clear")]
    set: Option<Day>,
    /// Forget the D-day set here; the config file's applies again.
    #[arg(long)]
    clear: bool,
    /// Why it changed (goes to the audit log).
    #[arg(long)]
    reason: Option<String>,
}

pub async fn timeline(config: &Config, args: TimelineArgs) -> Result<(), CliError> {
    let control = open_control(config).await?;
    show_timeline(&control, config.d_day, args.set, args.clear, args.reason.as_deref()).await
}

/// `sti-rollout timeline`: changes the D-day when asked, then prints the calendar.
async fn show_timeline(
    control: &Database,
    configured: Option<Day>,
    set: Option<Day>,
    clear: bool,
    reason: Option<&str>,
) -> Result<(), CliError> {
    let db_error = |e: sqlx::Error| CliError::User(format!("the timeline cannot be read: {e}"));
    if set.is_some() || clear {
        let before =
            crate::db::timeline::change_d_day(control, set, &actor(), reason).await.map_err(db_error)?;
        let show = |d: Option<Day>| d.map_or("none".to_owned(), |d| d.to_string());
        eprintln!("D-day: {} → {}", show(before), show(set));
    }
    let mut phases = Vec::new();
    for env in Environment::ALL {
        phases.push((env, crate::db::rollout::phases(control, env).await.map_err(db_error)?));
    }
    let timeline = crate::db::timeline::read(control, configured, &phases).await.map_err(db_error)?;
    let Some(d_day) = timeline.d_day else {
        println!("No D-day is set: use --set YYYY-MM-DD, or d_day in the config file.");
        return Ok(());
    };
    println!("D-day {d_day} ({}); today {}", timeline.source, timeline.today);
    for e in &timeline.environments {
        println!(
            "{:<8} planned {} ({} → {})  actual {:<26} {}",
            e.environment.as_str(),
            crate::domain::timeline::window_label(e.environment),
            e.planned_start,
            e.planned_end,
            e.actual.describe(|d| d.to_string()),
            e.schedule.describe()
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct FlagArgs {
    /// The environment: dev, staging or prod.
    #[arg(long)]
    env: Environment,
    /// on or off.
    #[arg(value_parser = ["on", "off"])]
    state: String,
    /// Why (goes to the audit log).
    #[arg(long)]
    reason: Option<String>,
    /// Turn it on although the environment is not verified, for this written reason (audited).
    #[arg(long, value_name = "REASON")]
    override_gate: Option<String>,
}

pub async fn flag(
    config: &Config,
    FlagArgs { env, state, reason, override_gate }: FlagArgs,
) -> Result<(), CliError> {
    let control = open_control(config).await?;
    let on = state == "on";
    crate::engine::operate::set_flag(
        &control,
        env,
        &actor(),
        on,
        reason.as_deref(),
        override_gate.as_deref(),
    )
    .await
    .map_err(|source| CliError::Engine { env, source })?;
    println!("{env}: ENABLE_STI {state}");
    Ok(())
}
