//! The run's progress card (bar, figures, rate, ETA, holds) and its three charts.

use super::next::Asked;
use super::waiting::{look, WaitingBox};
use crate::domain::forecast::against;
use crate::domain::format::{
    capitalised, clock_ms, fixed, format_count, format_duration, format_epoch_ms, format_percent,
};
use crate::domain::health::Health;
use crate::domain::live::{CaptureChange, LiveView, RunView};
use crate::domain::phases::Phase;
use crate::domain::run::{RunKind, RunRequest, RunState};
use leptos::either::Either;
use leptos::prelude::*;

/// The badge's words: the run's health, or the request its live runner is about to act on.
fn state_label(run: &RunView, health: &Health) -> String {
    let alive = !matches!(health, Health::RunnerLost { .. });
    match run.requested {
        Some(RunRequest::Pause) if alive && run.state == RunState::Running => "pausing…".into(),
        Some(RunRequest::Resume) if alive && run.state == RunState::Paused => "resuming…".into(),
        Some(RunRequest::Cancel) if alive && run.is_active() => "cancelling…".into(),
        _ => health.label().to_owned(),
    }
}

/// The run's progress: bar, figures, rate and ETA — fixed-width, so nothing jumps as they change.
#[component]
pub(super) fn RunProgress(live: RwSignal<LiveView>, operator: bool, asked: Asked) -> impl IntoView {
    let clock = ticking(live);
    let look = look(live.read_untracked().environment, live, operator);
    move || {
        let view = live.get();
        let Some(run) = view.run.clone() else {
            return Either::Left(view! {
                <h2 id="run-heading">"No run yet"</h2>
                <p class="empty" data-testid="no-run">{if view.phases.iter().any(|(p, s)| *p == Phase::DryRun && s.is_done()) {
                    "Nothing has been backfilled here yet; the dry-run is done."
                } else {
                    "Nothing has been backfilled here. Start with a dry-run."
                }}</p>
            });
        };
        let fraction = run.progress().fraction();
        let verb = if run.kind == RunKind::Rollback { "deleted" } else { "created" };
        let health = Health::of(&run, view.read_at);
        let said = health.describe(view.read_at, |ms| format!("{} UTC", clock_ms(ms)));
        // the notices count on between pushes: "next try in 4 s" down, "last heard from" up
        let counting = {
            let run = run.clone();
            move || {
                let now = clock.get().max(view.read_at);
                Health::of(&run, now).describe(now, |ms| format!("{} UTC", clock_ms(ms)))
            }
        };
        let counting_lost = counting.clone();
        Either::Right(view! {
            <div class="run-head">
                <h2 id="run-heading">{format!("{} #{}", run.kind.title(), run.id)}</h2>
                <span class=format!("run-state run-state-{}", health.as_str()) data-testid="run-state" title=said>{state_label(&run, &health)}</span>
                <span class="run-meta">{format!("started by {} · {}", run.started_by, format_epoch_ms(run.created_at))}</span>
                {(run.workers > 1).then(|| view! {
                    <span class="run-meta" data-testid="run-workers">{format!("{} workers on each replica", run.workers)}</span>
                })}
            </div>
            {match &health {
                Health::Waiting(hold) => Some(view! {
                    <WaitingBox env=view.environment run=run.clone() hold=hold.clone() clock operator asked look/>
                }.into_any()),
                Health::Throttled(_) => Some(view! {
                    <div class="notice notice-warn" role="status" data-testid="run-hold">
                        {counting}
                        " · the run goes on by itself when the signal is under its threshold"
                    </div>
                }.into_any()),
                _ => None,
            }}
            {matches!(health, Health::RunnerLost { .. }).then(|| view! {
                <div class="notice notice-error" role="alert" data-testid="runner-gone">
                    {move || capitalised(&counting_lost())}
                    " — the process ended? Nothing committed is lost. "
                    {match (run.started_by.starts_with("user:"), run.runner_gone(view.read_at)) {
                        (true, false) => "A console replica takes the run over by itself once its lease runs out: it resumes after its checkpoint.",
                        (true, true) => "A console replica takes the run over by itself within seconds: it resumes after its checkpoint.",
                        (false, false) => "Once its lease runs out, its next backfill or an operator here (Take over) takes the run over: it resumes after its checkpoint.",
                        (false, true) => "Its next backfill, or an operator here (Take over), takes the run over: it resumes after its checkpoint.",
                    }}
                </div>
            })}
            {run.error.clone().map(|e| view! { <div class="notice notice-error" role="alert">{e}</div> })}
            {run.fk_validation_ms.map(|ms| view! {
                <div class="notice" role="status" data-testid="fk-validation">
                    {format!("Deferred validation: the foreign keys were added back and validated in {} after the copy.", match ms {
                        // a validation is mostly under a minute: tenths say more than "0 s"
                        0..60_000 => format!("{} s", fixed(ms as f64 / 1000.0, 1)),
                        _ => format_duration(ms as f64 / 1000.0),
                    })}
                </div>
            })}
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=fixed(fraction * 100.0, 0)>
                // a rect's width, not a style attribute: the content security policy allows no inline styles
                <svg class="progress-bar" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                    <defs>
                        <linearGradient id="progress-gradient">
                            <stop class="progress-stop-school" offset="0"/>
                            <stop class="progress-stop-self-study" offset="1"/>
                        </linearGradient>
                    </defs>
                    <rect class="progress-fill" x="0" y="0" height="1" width=fixed(fraction * 100.0, 2)/>
                </svg>
            </div>
            <dl class="run-figures">
                <div class="figure-main">
                    <dt>"Done"</dt>
                    <dd data-testid="progress">{format_percent(fraction)}</dd>
                </div>
                <div class="figure-wide">
                    <dt>"Keys"</dt>
                    <dd data-testid="keys">{format!("{} / {}", format_count(run.checkpoint - run.low_id), format_count(run.high_id - run.low_id))}</dd>
                </div>
                <div>
                    <dt><span class="swatch swatch-school"></span>{format!("School {verb}")}</dt>
                    <dd data-testid="school">{format_count(run.school_created)}</dd>
                </div>
                <div>
                    <dt><span class="swatch swatch-self-study"></span>{format!("Self-study {verb}")}</dt>
                    <dd data-testid="self-study">{format_count(run.self_study_created)}</dd>
                </div>
                <div>
                    <dt>"Skipped"</dt>
                    <dd data-testid="skipped">{format_count(run.skipped())}</dd>
                </div>
                <div>
                    <dt>"Rejected"</dt>
                    <dd data-testid="rejected">{format_count(run.errors)}</dd>
                </div>
                <div>
                    <dt>{if run.is_active() { "Rate" } else { "Average rate" }}</dt>
                    <dd data-testid="rate">{view.rows_per_second.map_or("—".into(), |r| format!("{} rows/s", format_count(r.round() as i64)))}</dd>
                </div>
                <div>
                    <dt>{if run.is_active() { "ETA" } else { "Took" }}</dt>
                    <dd data-testid="eta">{match &health {
                        Health::Waiting(_) | Health::Throttled(_) => "on hold".to_owned(),
                        Health::Paused => "paused".to_owned(),
                        Health::RunnerLost { .. } => "stale".to_owned(),
                        _ if run.is_active() => view.eta_seconds.map_or("—".into(), format_duration),
                        _ => format_duration(run.duration_ms() as f64 / 1000.0),
                    }}</dd>
                </div>
                <div>
                    <dt>"Chunks committed"</dt>
                    <dd>{format_count(run.chunks)}</dd>
                </div>
                <div class="figure-wide">
                    <dt>"Chunk size"</dt>
                    <dd data-testid="chunk-size">{format!("{}{}", format_count(run.chunk_size), if run.pause_ms > 0 { format!(" · {} ms pause", format_count(run.pause_ms)) } else { String::new() })}</dd>
                </div>
            </dl>
            {view.run_forecast_seconds.map(|forecast| view! {
                <p class="read-at" data-testid="run-forecast">{against(forecast, (run.state == RunState::Completed).then(|| run.duration_ms() as f64 / 1000.0))}</p>
            })}
            <p class="read-at">"Updated "<time>{clock_ms(run.updated_at)}</time>" UTC"</p>
            <p class="read-at" data-testid="capture">{capture_line(view.capture.as_ref())}</p>
        })
    }
}

/// The server's clock as the page last heard it (each push carries it), moved on every second in
/// the browser between pushes.
fn ticking(live: RwSignal<LiveView>) -> RwSignal<i64> {
    let clock = RwSignal::new(live.read_untracked().read_at);
    Effect::new(move |_| clock.set(live.read().read_at));
    #[cfg(feature = "hydrate")]
    if let Ok(handle) = leptos::prelude::set_interval_with_handle(
        move || clock.update(|now| *now += 1000),
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || handle.clear());
    }
    clock
}

/// Whether application writes are kept in step here, since when and by whose start.
fn capture_line(capture: Option<&CaptureChange>) -> String {
    match capture {
        Some(c) if c.on => format!(
            "Change capture on since {} (installed by {} with a {} ms lock timeout): every write to projects keeps the subtype rows in step; a rollback removes it.",
            format_epoch_ms(c.at),
            c.actor,
            c.lock_timeout_ms.map_or("–".to_owned(), format_count)
        ),
        Some(c) => format!("Change capture removed {} by {} (rollback).", format_epoch_ms(c.at), c.actor),
        None => "Change capture not installed: the first live backfill installs it.".to_owned(),
    }
}

#[component]
pub(super) fn RunCharts(live: RwSignal<LiveView>) -> impl IntoView {
    view! {
        <Show
            when=move || !live.read().chart.is_empty()
            fallback=|| view! { <p class="empty">"The charts start with the first committed chunk."</p> }
        >
            <div class="charts">
                <figure class="chart chart-wide" data-testid="chart-rows">
                    <figcaption>
                        {move || if live.read().run.as_ref().is_some_and(|r| r.kind == RunKind::Rollback) { "Rows deleted " } else { "Rows created " }}
                        <span class="legend"><span class="swatch swatch-school"></span>"school"</span>
                        <span class="legend"><span class="swatch swatch-self-study"></span>"self-study"</span>
                    </figcaption>
                    <div class="chart-svg chart-svg-wide" inner_html=move || live.read().charts.rows.clone()></div>
                </figure>
                <figure class="chart" data-testid="chart-throughput">
                    <figcaption>{move || if live.read().run.as_ref().is_some_and(|r| r.kind == RunKind::Rollback) { "Rows deleted per second" } else { "Rows read per second" }}</figcaption>
                    <div class="chart-svg" inner_html=move || live.read().charts.throughput.clone()></div>
                </figure>
                <figure class="chart" data-testid="chart-duration">
                    <figcaption>"Chunk duration"</figcaption>
                    <div class="chart-svg" inner_html=move || live.read().charts.duration.clone()></div>
                </figure>
            </div>
        </Show>
    }
}
