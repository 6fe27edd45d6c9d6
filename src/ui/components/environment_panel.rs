//! One environment's panel on the overview: its flag, its database and its row counts.

use crate::domain::calendar::Day;
use crate::domain::format::{clock_ms, format_count, format_percent, time_of_day};
use crate::domain::health::Health;
use crate::domain::live::RunView;
use crate::domain::next_step::NextStep;
use crate::domain::overview::{EnvironmentStatus, FlagState, TableCounts};
use crate::domain::run::RunKind;
use crate::ui::charts;
use leptos::either::Either;
use leptos::prelude::*;

#[component]
pub fn EnvironmentPanel(
    status: EnvironmentStatus,
    next: NextStep,
    window_end: Option<Day>,
    read_at_ms: i64,
) -> impl IntoView {
    let forecast = status.forecast.as_ref().map(|f| {
        let finish = Day::from_epoch_ms(read_at_ms + (f.seconds * 1000.0) as i64);
        let against = match window_end {
            Some(end) if finish > end => format!(" — after its window closes ({})", end.short()),
            Some(end) => format!(" — within its window (ends {})", end.short()),
            None => String::new(),
        };
        (format!("Backfill forecast: {}{against}", f.describe()), window_end.is_some_and(|end| finish > end))
    });
    let env = status.environment.as_str();
    let heading_id = format!("env-{env}-heading");
    let labelled_by = heading_id.clone();
    view! {
        <article class="env-panel" data-testid=format!("env-{env}") aria-labelledby=labelled_by>
            <header class="env-head">
                <div class="env-title">
                    <h2 id=heading_id>{status.environment.label()}</h2>
                    <code class="env-code">{env}</code>
                </div>
                <FlagBadge env=env flag=status.enable_sti/>
            </header>
            <p class=format!("env-next env-next-{}", next.kind.as_str()) data-testid=format!("next-{env}")>
                {match next.action {
                    Some(action) => view! { <a href=format!("/env/{env}#{}", action.anchor())>{next.sentence}</a> }.into_any(),
                    None => view! { <span>{next.sentence}</span> }.into_any(),
                }}
            </p>
            {forecast.map(|(text, late)| view! {
                <p class=if late { "env-forecast env-forecast-late" } else { "env-forecast" } data-testid=format!("forecast-{env}")>{text}</p>
            })}
            <a class="env-link" href=format!("/env/{env}") data-testid=format!("open-{env}")>{format!("Open {env}: runs, controls, charts →")}</a>
            <p class="env-db" title="Target database">{status.database}</p>
            {match status.counts {
                Ok(counts) => Either::Left(view! { <Figures env=env counts=counts/> }),
                Err(message) => Either::Right(view! {
                    <div class="notice notice-error" role="alert" data-testid=format!("error-{env}")>
                        <strong>"Target database unavailable. "</strong>
                        <span>{message}</span>
                    </div>
                }),
            }}
            <LastRun env=env run=status.last_run now_ms=read_at_ms/>
        </article>
    }
}

/// The newest backfill or rollback run, or that none ran yet: its health, not only its state
/// (a run whose runner died says so), and what holds it.
#[component]
fn LastRun(env: &'static str, run: Option<RunView>, now_ms: i64) -> impl IntoView {
    let Some(run) = run else {
        return view! { <p class="last-run last-run-none" data-testid=format!("run-{env}")>"No backfill has run here yet"</p> }
            .into_any();
    };
    let created = if run.kind == RunKind::Rollback { "deleted" } else { "created" };
    let progress = run.is_active().then(|| format!(" · {}", format_percent(run.progress().fraction())));
    let health = Health::of(&run, now_ms);
    let why = matches!(health, Health::Waiting(_) | Health::Throttled(_) | Health::RunnerLost { .. })
        .then(|| health.describe(now_ms, |ms| format!("{} UTC", clock_ms(ms))));
    let why_class = format!("last-run-why last-run-why-{}", health.as_str());
    view! {
        <p class="last-run" data-testid=format!("run-{env}")>
            <span class=format!("run-state run-state-{}", health.as_str()) data-testid=format!("health-{env}")>{health.label()}</span>
            {format!(" {} #{}{}", run.kind.as_str(), run.id, progress.unwrap_or_default())}
            <span class="last-run-figures">
                {format!(
                    "{} {created} · {} skipped · {} rejected",
                    format_count(run.created()),
                    format_count(run.skipped()),
                    format_count(run.errors)
                )}
            </span>
            {why.map(|why| view! { <span class=why_class data-testid=format!("health-why-{env}")>{why}</span> })}
        </p>
    }
    .into_any()
}

/// `ENABLE_STI` on or off, with who changed it last in the tooltip.
#[component]
fn FlagBadge(env: &'static str, flag: Option<FlagState>) -> impl IntoView {
    let (class, text, title) = match flag {
        Some(flag) => (
            if flag.enabled { "badge badge-on" } else { "badge badge-off" },
            if flag.enabled { "ENABLE_STI on" } else { "ENABLE_STI off" },
            format!("Last changed by {} at {}", flag.updated_by, time_of_day(&flag.updated_at)),
        ),
        None => ("badge badge-unknown", "ENABLE_STI unknown", "The flag could not be read".to_owned()),
    };
    view! { <span class=class title=title data-testid=format!("flag-{env}")>{text}</span> }
}

/// The row counts and how much of the legacy table is split.
#[component]
fn Figures(env: &'static str, counts: TableCounts) -> impl IntoView {
    let coverage = format_percent(counts.coverage());
    let bar = charts::coverage_bar(&counts);
    let bar_label = format!("{coverage} of legacy projects have a subtype row");
    view! {
        <dl class="figures">
            <div class="figure figure-main">
                <dt>"Legacy projects"</dt>
                <dd data-testid=format!("legacy-{env}")>{format_count(counts.legacy)}</dd>
            </div>
            <div class="figure">
                <dt><span class="swatch swatch-school" aria-hidden="true"></span>"school_projects"</dt>
                <dd data-testid=format!("school-{env}")>{format_count(counts.school)}</dd>
            </div>
            <div class="figure">
                <dt><span class="swatch swatch-self-study" aria-hidden="true"></span>"self_study_projects"</dt>
                <dd data-testid=format!("self-study-{env}")>{format_count(counts.self_study)}</dd>
            </div>
        </dl>
        <div class="coverage">
            <div class="coverage-head">
                <span>"Split into subtypes"</span>
                <strong data-testid=format!("coverage-{env}")>{coverage}</strong>
            </div>
            <div class="coverage-bar" role="img" aria-label=bar_label inner_html=bar></div>
            <p class="coverage-note">
                <span class="swatch swatch-remaining" aria-hidden="true"></span>
                {format_count(counts.remaining())}" legacy rows without a subtype row"
            </p>
        </div>
    }
}
