//! `/env/:env`: one environment's rollout — the active or last run with live progress and
//! charts, the operator's controls, verification, rejected rows and the run history. Live
//! figures arrive as server-sent events; the page never needs a reload.

use crate::api::environment::{
    control_run, dead_letters, dry_run, emergency_stop, get_environment, pace_run, plan_rollback, start_run,
    verify_environment,
};
use crate::api::rollout::{add_checklist_item, retire_checklist_item, set_flag, sign_checklist};
use crate::domain::access::Role;
use crate::domain::checklist::SignState;
use crate::domain::environment::Environment;
use crate::domain::live::{
    clock_ms, format_duration, format_epoch_ms, CaptureChange, EnvironmentPage, LiveView, RunView,
    VerificationView,
};
use crate::domain::overview::{format_count, format_percent};
use crate::domain::pacing::DEFAULT_CHUNK;
use crate::domain::phases::{Phase, PhaseStatus};
use crate::domain::reports::{DryRunReport, RollbackPlan};
use crate::domain::run::{HoldKind, RunKind, RunRequest, RunState};
use crate::ui::charts::{self, RunChart};
use crate::ui::components::async_view::{AsyncView, ErrorNotice};
use crate::ui::erase;
use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// Whether the pushed updates are flowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), expect(dead_code, reason = "only the browser connects"))]
enum Connection {
    Connecting,
    Live,
    Reconnecting,
}

#[component]
pub fn EnvironmentPage() -> impl IntoView {
    let params = use_params_map();
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let page = Resource::new(move || env.get(), get_environment);
    view! {
        <Title text=move || format!("{} environment", env.get())/>
        <AsyncView resource=page view=|page: EnvironmentPage| view! { <EnvironmentBody page/> }/>
    }
}

/// A message after an action: success or failure, in words.
type Flash = RwSignal<Option<(bool, String)>>;

fn say<T>(flash: Flash, result: &Result<T, ServerFnError>, ok: impl FnOnce(&T) -> String) {
    flash.set(Some(match result {
        Ok(value) => (true, ok(value)),
        Err(error) => {
            (false, error.to_string().trim_start_matches("error running server function: ").to_owned())
        }
    }));
}

#[island]
fn EnvironmentBody(page: EnvironmentPage) -> impl IntoView {
    let env = page.live.environment;
    let live = RwSignal::new(page.live);
    let connection = RwSignal::new(Connection::Connecting);
    let flash: Flash = RwSignal::new(None);
    let operator = page.role.allows(Role::Operator);
    Effect::new(move |_| subscribe(env, live, connection));
    // each section is type-erased on the server: the page's nested view types otherwise make its
    // render deep enough to overflow a worker thread's stack in debug builds. Not in the browser,
    // where erasing costs WebAssembly size and the HTML is the same either way.
    let head = erase(view! {
        <div class="page-head">
            <div>
                <p class="crumbs"><a href="/">"Overview"</a>" / "{env.as_str()}</p>
                <h1>{env.label()}" environment"</h1>
                <p class="lede">"Backfill of legacy projects into the subtype tables, as it happens."</p>
            </div>
            <div class="head-side">
                <LiveBadge connection/>
                <span
                    class=move || if live.read().flag_on { "badge badge-on" } else { "badge badge-off" }
                    data-testid="flag"
                >
                    {move || if live.read().flag_on { "ENABLE_STI on" } else { "ENABLE_STI off" }}
                </span>
            </div>
        </div>
        <FlashLine flash/>
    });
    let plan = erase(view! {
        <section class="card" aria-label="Phases">
            <PhaseStepper live/>
        </section>
    });
    let progress = erase(view! {
        <section class="card" aria-labelledby="run-heading">
            <RunProgress live/>
        </section>
    });
    let controls = operator.then(|| erase(view! { <RunControls env live role=page.role flash/> }));
    let charts = erase(view! {
        <section class="card" aria-labelledby="charts-heading">
            <h2 id="charts-heading">"Throughput"</h2>
            <RunCharts live/>
        </section>
    });
    let dead_letters = page.dead_letters;
    let checks = erase(view! {
        <div class="two-col">
            <section class="card" aria-labelledby="verify-heading">
                <VerificationCard env live operator flash/>
            </section>
            <section class="card" aria-labelledby="dead-heading">
                <DeadLetters env live first=dead_letters/>
            </section>
        </div>
    });
    let rollout = erase(view! {
        <div class="two-col">
            <section class="card" aria-labelledby="flag-heading">
                <FlagCard env live role=page.role flash/>
            </section>
            <section class="card" aria-labelledby="checklist-heading">
                <ChecklistCard env live role=page.role flash/>
            </section>
        </div>
    });
    let contacts = page.contacts;
    let contacts = erase(view! {
        <section class="card" aria-labelledby="contacts-heading" data-testid="contacts">
            <h2 id="contacts-heading">"Emergency contacts"</h2>
            {if contacts.is_empty() {
                Either::Left(view! {
                    <p class="empty">"None configured for this environment: add [[contacts."{env.as_str()}"]] entries to the config file."</p>
                })
            } else {
                Either::Right(view! {
                    <p class="muted">"Escalate in this order."</p>
                    <ol class="contacts">
                        {contacts.into_iter().map(|c| view! {
                            <li><strong>{c.name}</strong>" · "{c.role}" · "<span class="reach">{c.reach}</span></li>
                        }).collect_view()}
                    </ol>
                })
            }}
        </section>
    });
    let history = erase(view! {
        <section class="card" aria-labelledby="history-heading">
            <History env live/>
        </section>
    });
    view! { {head} {plan} {progress} {controls} {charts} {checks} {rollout} {contacts} {history} }
}

/// Opens the event stream (in the browser only) and feeds the page's live figures from it; the
/// browser reconnects by itself when it drops.
#[cfg(feature = "hydrate")]
fn subscribe(env: Environment, live: RwSignal<LiveView>, connection: RwSignal<Connection>) {
    let on_live = move |text: String| {
        if let Ok(view) = serde_json::from_str::<LiveView>(&text) {
            live.set(view);
            connection.set(Connection::Live);
        }
    };
    let on_state =
        move |up: bool| connection.set(if up { Connection::Live } else { Connection::Reconnecting });
    crate::ui::events::listen(&format!("/events/{env}"), "live", on_live, on_state);
}

#[cfg(not(feature = "hydrate"))]
fn subscribe(_: Environment, _: RwSignal<LiveView>, _: RwSignal<Connection>) {}

#[component]
fn LiveBadge(connection: RwSignal<Connection>) -> impl IntoView {
    view! {
        <span class=move || format!("live live-{:?}", connection.get()).to_lowercase() data-testid="live" role="status">
            {move || match connection.get() {
                Connection::Connecting => "connecting…",
                Connection::Live => "live",
                Connection::Reconnecting => "reconnecting…",
            }}
        </span>
    }
}

#[component]
fn FlashLine(flash: Flash) -> impl IntoView {
    move || {
        flash.get().map(|(ok, message)| {
            view! {
                <div class=if ok { "notice notice-ok" } else { "notice notice-error" } role="status" data-testid="flash">
                    <span>{message}</span>
                    <button class="link-button" on:click=move |_| flash.set(None) aria-label="Dismiss">"×"</button>
                </div>
            }
        })
    }
}

/// The badge's colour: a run holding shows as held, whatever it holds for.
fn state_class(run: &RunView) -> &'static str {
    match &run.hold {
        Some(hold) if run.state == RunState::Running => hold.kind.as_str(),
        _ => run.state.as_str(),
    }
}

fn state_label(run: &RunView) -> String {
    match run.requested {
        Some(RunRequest::Pause) if run.state == RunState::Running => "pausing…".into(),
        Some(RunRequest::Resume) if run.state == RunState::Paused => "resuming…".into(),
        Some(RunRequest::Cancel) if run.is_active() => "cancelling…".into(),
        _ if run.state == RunState::Running && run.hold.is_some() => {
            run.hold.as_ref().map(|h| h.kind.as_str().to_owned()).unwrap_or_default()
        }
        _ => run.state.to_string(),
    }
}

/// The run's progress: bar, figures, rate and ETA — fixed-width, so nothing jumps as they change.
#[component]
fn RunProgress(live: RwSignal<LiveView>) -> impl IntoView {
    move || {
        let view = live.get();
        let Some(run) = view.run.clone() else {
            return Either::Left(view! {
                <h2 id="run-heading">"No run yet"</h2>
                <p class="empty" data-testid="no-run">"Nothing has been backfilled here. Start with a dry-run."</p>
            });
        };
        let fraction = run.progress().fraction();
        let verb = if run.kind == RunKind::Rollback { "deleted" } else { "created" };
        let gone = run.runner_gone(view.read_at);
        Either::Right(view! {
            <div class="run-head">
                <h2 id="run-heading">{format!("{} #{}", run.kind.title(), run.id)}</h2>
                <span class=format!("run-state run-state-{}", state_class(&run)) data-testid="run-state">{state_label(&run)}</span>
                <span class="run-meta">{format!("started by {} · {}", run.started_by, format_epoch_ms(run.created_at))}</span>
            </div>
            {run.hold.clone().filter(|_| run.state == RunState::Running && !gone).map(|hold| view! {
                <div class="notice notice-warn" role="status" data-testid="run-hold">
                    {hold.describe(&format!("{} UTC", clock_ms(hold.since_ms)), view.read_at)}
                    {if hold.kind == HoldKind::Waiting {
                        " · the run goes on by itself when the database answers; nothing committed is lost"
                    } else {
                        " · the run goes on by itself when the signal is under its threshold"
                    }}
                </div>
            })}
            {gone.then(|| view! {
                <div class="notice notice-error" role="alert" data-testid="runner-gone">
                    "Its runner stopped renewing its lease (the process ended?). An operator can take the run over: it resumes after its checkpoint."
                </div>
            })}
            {run.error.clone().map(|e| view! { <div class="notice notice-error" role="alert">{e}</div> })}
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{:.0}", fraction * 100.0)>
                // a rect's width, not a style attribute: the content security policy allows no inline styles
                <svg class="progress-bar" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                    <defs>
                        <linearGradient id="progress-gradient">
                            <stop class="progress-stop-school" offset="0"/>
                            <stop class="progress-stop-self-study" offset="1"/>
                        </linearGradient>
                    </defs>
                    <rect class="progress-fill" x="0" y="0" height="1" width=format!("{:.2}", fraction * 100.0)/>
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
                    <dt>"Rate"</dt>
                    <dd>{view.rows_per_second.map_or("—".into(), |r| format!("{} rows/s", format_count(r.round() as i64)))}</dd>
                </div>
                <div>
                    <dt>{if run.is_active() { "ETA" } else { "Took" }}</dt>
                    <dd data-testid="eta">{if run.hold.is_some() && run.state == RunState::Running {
                        "on hold".to_owned()
                    } else if run.is_active() {
                        view.eta_seconds.map_or("—".into(), format_duration)
                    } else {
                        format_duration(run.duration_ms() as f64 / 1000.0)
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
            <p class="read-at">"Updated "<time>{clock_ms(run.updated_at)}</time>" UTC"</p>
            <p class="read-at" data-testid="capture">{capture_line(view.capture.as_ref())}</p>
        })
    }
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
fn RunCharts(live: RwSignal<LiveView>) -> impl IntoView {
    let chart = move |which: RunChart| charts::run_chart(which, &live.read().chart);
    view! {
        <Show
            when=move || !live.read().chart.is_empty()
            fallback=|| view! { <p class="empty">"The charts start with the first committed chunk."</p> }
        >
            <div class="charts">
                <figure class="chart chart-wide" data-testid="chart-rows">
                    <figcaption>
                        "Rows created "
                        <span class="legend"><span class="swatch swatch-school"></span>"school"</span>
                        <span class="legend"><span class="swatch swatch-self-study"></span>"self-study"</span>
                    </figcaption>
                    <div class="chart-svg chart-svg-wide" inner_html=move || chart(RunChart::Cumulative)></div>
                </figure>
                <figure class="chart" data-testid="chart-throughput">
                    <figcaption>"Rows read per second"</figcaption>
                    <div class="chart-svg" inner_html=move || chart(RunChart::Throughput)></div>
                </figure>
                <figure class="chart" data-testid="chart-duration">
                    <figcaption>"Chunk duration"</figcaption>
                    <div class="chart-svg" inner_html=move || chart(RunChart::ChunkDuration)></div>
                </figure>
            </div>
        </Show>
    }
}

/// What an operator is about to confirm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Start(RunKind),
    Stop,
}

/// The operator's controls, each offered only when the run's state allows it.
#[component]
fn RunControls(env: Environment, live: RwSignal<LiveView>, role: Role, flash: Flash) -> impl IntoView {
    let chunk = RwSignal::new(DEFAULT_CHUNK.to_string());
    let pause = RwSignal::new("0".to_owned());
    let confirming: RwSignal<Option<Pending>> = RwSignal::new(None);
    let typed = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let override_reason = RwSignal::new(String::new());
    let number = |s: RwSignal<String>| s.get_untracked().trim().parse::<i64>().unwrap_or(-1);

    let start =
        Action::new(move |(kind, chunk, pause, confirm, over): &(RunKind, i64, i64, String, String)| {
            let over = Some(over.clone()).filter(|o| !o.trim().is_empty());
            start_run(env.to_string(), *kind, *chunk, *pause, confirm.clone(), over)
        });
    let dry = Action::new(move |chunk: &i64| dry_run(env.to_string(), *chunk));
    let plan = Action::new(move |_: &()| plan_rollback(env.to_string()));
    let request = Action::new(move |(run, req): &(i64, RunRequest)| control_run(env.to_string(), *run, *req));
    let pace = Action::new(move |(run, chunk, pause): &(i64, i64, i64)| {
        pace_run(env.to_string(), *run, *chunk, *pause)
    });
    let stop = Action::new(move |(confirm, reason): &(String, String)| {
        emergency_stop(env.to_string(), confirm.clone(), reason.clone())
    });

    Effect::new(move |_| {
        if let Some(result) = start.value().get() {
            say(flash, &result, |id| format!("Run #{id} started."));
        }
    });
    Effect::new(move |_| {
        if let Some(Err(error)) = dry.value().get() {
            say::<()>(flash, &Err(error), |_| String::new());
        }
    });
    Effect::new(move |_| {
        if let Some(result) = request.value().get() {
            say(flash, &result, |_| "Asked; the run acts at its next chunk boundary.".into());
        }
    });
    Effect::new(move |_| {
        if let Some(result) = pace.value().get() {
            say(flash, &result, |_| "New pacing from the next chunk on.".into());
        }
    });
    Effect::new(move |_| {
        if let Some(result) = stop.value().get() {
            say(flash, &result, |stopped| {
                stopped
                    .iter()
                    .map(|s| {
                        format!(
                            "{}: ENABLE_STI off{}",
                            s.environment,
                            s.cancelled_run.map_or(String::new(), |r| format!(", run #{r} cancelling"))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            });
        }
    });

    let active = move || live.read().run.clone().filter(RunView::is_active);
    let busy = move || {
        start.pending().get() || dry.pending().get() || request.pending().get() || pace.pending().get()
    };
    let confirm_now = move || {
        let Some(pending) = confirming.get_untracked() else { return };
        let confirm = typed.get_untracked();
        match pending {
            Pending::Start(kind) => {
                start.dispatch((
                    kind,
                    number(chunk),
                    number(pause),
                    confirm,
                    override_reason.get_untracked(),
                ));
            }
            Pending::Stop => {
                stop.dispatch((confirm, reason.get_untracked()));
            }
        }
        confirming.set(None);
        typed.set(String::new());
    };

    view! {
        <section class="card controls" aria-labelledby="controls-heading">
            <div class="controls-head">
                <h2 id="controls-heading">"Controls"</h2>
                <button class="button button-danger" data-testid="emergency-stop" on:click=move |_| confirming.set(Some(Pending::Stop))>
                    "Emergency stop"
                </button>
            </div>
            {move || match active() {
                None => Either::Left(view! {
                    {move || live.read().gate_closed.clone().map(|reason| view! {
                        <div class="notice notice-warn" role="status" data-testid="gate">
                            <span><strong>"Gate closed: "</strong>{reason}</span>
                        </div>
                        {(role == Role::Admin).then(|| view! {
                            <div class="control-row">
                                <label>"Override the gate because… (audited)"<input class="wide" data-testid="gate-override" prop:value=override_reason on:input=move |e| override_reason.set(event_target_value(&e))/></label>
                            </div>
                        })}
                    })}
                    <div class="control-row">
                        <label>"Chunk size"<input type="number" min="1" max="100000" data-testid="chunk" prop:value=chunk on:input=move |e| chunk.set(event_target_value(&e))/></label>
                        <label>"Pause between chunks (ms)"<input type="number" min="0" max="60000" data-testid="pause" prop:value=pause on:input=move |e| pause.set(event_target_value(&e))/></label>
                        <button class="button" data-testid="dry-run" disabled=busy on:click=move |_| { dry.dispatch(number(chunk)); }>
                            {move || if dry.pending().get() { "Dry-running…" } else { "Dry-run" }}
                        </button>
                        <button class="button button-primary" data-testid="start"
                            disabled=move || busy() || (live.read().gate_closed.is_some() && override_reason.read().trim().is_empty())
                            on:click=move |_| confirming.set(Some(Pending::Start(RunKind::Backfill)))>
                            "Start backfill…"
                        </button>
                        <button class="button" data-testid="plan-rollback" disabled=busy on:click=move |_| { plan.dispatch(()); }>
                            {move || if plan.pending().get() { "Planning…" } else { "Plan rollback" }}
                        </button>
                        {move || live.read().verification.clone().filter(|v| !v.ok && !v.mismatched_ids.is_empty()).map(|v| view! {
                            <button class="button" data-testid="reconcile" disabled=busy
                                title="Re-copy exactly the ids the last verification found different"
                                on:click=move |_| confirming.set(Some(Pending::Start(RunKind::Reconcile)))>
                                {format!("Reconcile {} ids…", format_count(v.mismatched_ids.len() as i64))}
                            </button>
                        })}
                    </div>
                }),
                Some(run) => {
                    let id = run.id;
                    let gone = run.runner_gone(live.read_untracked().read_at);
                    let kind = run.kind;
                    Either::Right(view! {
                        <div class="control-row">
                            {(run.state == RunState::Running).then(|| view! {
                                <button class="button" data-testid="pause-run" disabled=busy on:click=move |_| { request.dispatch((id, RunRequest::Pause)); }>"Pause"</button>
                            })}
                            {(run.state == RunState::Paused).then(|| view! {
                                <button class="button button-primary" data-testid="resume-run" disabled=busy on:click=move |_| { request.dispatch((id, RunRequest::Resume)); }>"Resume"</button>
                            })}
                            <button class="button button-danger" data-testid="cancel-run" disabled=busy on:click=move |_| { request.dispatch((id, RunRequest::Cancel)); }>"Cancel run"</button>
                            {gone.then(|| view! {
                                <button class="button button-primary" data-testid="take-over" disabled=busy on:click=move |_| confirming.set(Some(Pending::Start(kind)))>
                                    {format!("Take over run #{id}…")}
                                </button>
                            })}
                        </div>
                        <div class="control-row">
                            <label>"Chunk size"<input type="number" min="1" max="100000" data-testid="pace-chunk" prop:value=run.chunk_size.to_string() on:input=move |e| chunk.set(event_target_value(&e))/></label>
                            <label>"Pause (ms)"<input type="number" min="0" max="60000" data-testid="pace-pause" prop:value=run.pause_ms.to_string() on:input=move |e| pause.set(event_target_value(&e))/></label>
                            <button class="button" data-testid="apply-pace" disabled=busy on:click=move |_| { pace.dispatch((id, number(chunk), number(pause))); }>"Apply pacing"</button>
                        </div>
                    })
                }
            }}
            {move || confirming.get().map(|pending| {
                let what = match pending {
                    Pending::Start(RunKind::Backfill) => format!("Start a live backfill in {env}? It writes to the subtype tables."),
                    Pending::Start(RunKind::Rollback) => format!("Roll back in {env}? This deletes every subtype row the backfill created there."),
                    Pending::Start(RunKind::Reconcile) => format!("Reconcile {env}? This re-copies the ids the last verification found different, then verify again."),
                    Pending::Stop => format!("Emergency stop in {env}: cancel the active run and turn ENABLE_STI off."),
                };
                let needs_name = env == Environment::Prod;
                let stop = pending == Pending::Stop;
                view! {
                    <div class="confirm" role="alertdialog" aria-labelledby="confirm-text" data-testid="confirm">
                        <p id="confirm-text">{what}</p>
                        {stop.then(|| view! {
                            <label>"Why (kept in the audit log)"<input data-testid="stop-reason" prop:value=reason on:input=move |e| reason.set(event_target_value(&e))/></label>
                        })}
                        {needs_name.then(|| view! {
                            <label>{format!("Type {env} to confirm")}<input data-testid="confirm-name" autocomplete="off" prop:value=typed on:input=move |e| typed.set(event_target_value(&e))/></label>
                        })}
                        <div class="control-row">
                            <button
                                class="button button-danger"
                                data-testid="confirm-yes"
                                disabled=move || (needs_name && typed.get().trim() != env.as_str()) || (stop && reason.get().trim().is_empty())
                                on:click=move |_| confirm_now()
                            >"Confirm"</button>
                            <button class="button" data-testid="confirm-no" on:click=move |_| confirming.set(None)>"Cancel"</button>
                        </div>
                    </div>
                }
            })}
            {move || dry.value().get().and_then(Result::ok).map(|report| view! { <DryRunResult report/> })}
            {move || plan.value().get().map(|result| match result {
                Ok((plan, refused)) => Either::Left(view! { <RollbackPlanView plan refused confirming/> }),
                Err(error) => Either::Right(view! { <div class="notice notice-error" role="alert">{error.to_string()}</div> }),
            })}
        </section>
    }
}

#[component]
fn DryRunResult(report: DryRunReport) -> impl IntoView {
    view! {
        <div class="report" data-testid="dry-run-report">
            <h3>{format!("Dry-run over ids ({}, {}] — nothing written", format_count(report.low_id), format_count(report.high_id))}</h3>
            <dl class="run-figures">
                <div><dt>"Would create"</dt><dd data-testid="would-create">{format_count(report.would_create.school + report.would_create.self_study)}</dd></div>
                <div><dt>"School / self-study"</dt><dd>{format!("{} / {}", format_count(report.would_create.school), format_count(report.would_create.self_study))}</dd></div>
                <div><dt>"Would skip"</dt><dd>{format_count(report.would_skip.school + report.would_skip.self_study)}</dd></div>
                <div><dt>"Would reject"</dt><dd data-testid="would-reject">{format_count(report.would_reject)}</dd></div>
                <div><dt>"Live run, about"</dt><dd>{format_duration(report.estimated_live_seconds)}</dd></div>
            </dl>
            <p class="read-at">
                {report.reasons.iter().map(|(r, n)| format!("{r}: {}", format_count(*n))).collect::<Vec<_>>().join(" · ")}
            </p>
        </div>
    }
}

#[component]
fn RollbackPlanView(
    plan: RollbackPlan,
    refused: Option<String>,
    confirming: RwSignal<Option<Pending>>,
) -> impl IntoView {
    let total = plan.school + plan.self_study;
    view! {
        <div class="report" data-testid="rollback-plan">
            <h3>"Rollback dry-run — nothing deleted"</h3>
            <p>{format!(
                "Would delete {} rows ({} school, {} self-study) created by backfills; would keep {} rows the application wrote.",
                format_count(total), format_count(plan.school), format_count(plan.self_study), format_count(plan.kept)
            )}</p>
            {match refused {
                Some(reason) => Either::Left(view! { <div class="notice notice-error" role="alert">{reason}</div> }),
                None => Either::Right(view! {
                    <button class="button button-danger" data-testid="start-rollback" disabled={total == 0}
                        on:click=move |_| confirming.set(Some(Pending::Start(RunKind::Rollback)))>
                        {format!("Roll back {} rows…", format_count(total))}
                    </button>
                }),
            }}
        </div>
    }
}

#[component]
fn VerificationCard(
    env: Environment,
    live: RwSignal<LiveView>,
    operator: bool,
    flash: Flash,
) -> impl IntoView {
    let verify = Action::new(move |_: &()| verify_environment(env.to_string()));
    Effect::new(move |_| {
        if let Some(result) = verify.value().get() {
            say(flash, &result, |v: &VerificationView| {
                if v.ok {
                    "Verified: every range matches.".into()
                } else {
                    format!("Verification found {} ranges that differ.", v.mismatched_ranges)
                }
            });
        }
    });
    let running = move || live.read().run.as_ref().is_some_and(RunView::is_active);
    view! {
        <div class="controls-head">
            <h2 id="verify-heading">"Verification"</h2>
            {operator.then(|| view! {
                <button class="button" data-testid="verify" disabled=move || verify.pending().get() || running()
                    title="Compares legacy rows with the subtype rows, range by range"
                    on:click=move |_| { verify.dispatch(()); }>
                    {move || if verify.pending().get() { "Verifying…" } else { "Verify" }}
                </button>
            })}
        </div>
        {move || match live.get().verification {
            None => Either::Left(view! { <p class="empty" data-testid="verification">"Not verified yet."</p> }),
            Some(v) => Either::Right(view! {
                <div data-testid="verification">
                    <p>
                        <span class=if v.ok { "badge badge-on" } else { "badge badge-off" }>{if v.ok { "matches" } else { "MISMATCH" }}</span>
                        {format!(" {} ranges of 10 000 ids checked in {} · {}", format_count(v.ranges), format_duration(v.duration_ms as f64 / 1000.0), format_epoch_ms(v.created_at))}
                    </p>
                    <table class="table">
                        <thead><tr><th>""</th><th>"Legacy rows"</th><th>"Subtype rows"</th></tr></thead>
                        <tbody>
                            <tr><td>"School"</td><td>{format_count(v.legacy_school)}</td><td>{format_count(v.school_rows)}</td></tr>
                            <tr><td>"Self-study"</td><td>{format_count(v.legacy_self_study)}</td><td>{format_count(v.self_study_rows)}</td></tr>
                        </tbody>
                    </table>
                    {(!v.mismatched_ids.is_empty()).then(|| view! {
                        <p class="mismatch">{format!("{} ranges differ; first ids: {}", v.mismatched_ranges,
                            v.mismatched_ids.iter().take(50).map(ToString::to_string).collect::<Vec<_>>().join(", "))}</p>
                    })}
                </div>
            }),
        }}
    }
}

/// The rejected rows, a page at a time, filterable by reason. The first page comes with the
/// page's props; later ones are read when the filter, the page or the run changes. (Not a
/// resource: one created in the island would be serialized into the page again for each render
/// of the view the island sits in.)
#[component]
fn DeadLetters(
    env: Environment,
    live: RwSignal<LiveView>,
    first: Result<crate::domain::live::DeadLetterPage, String>,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let page_no = RwSignal::new(1_i64);
    let shown = RwSignal::new(first);
    // refetched when a run starts, ends or rejects more rows
    let run_key = Memo::new(move |_| live.with(|l| l.run.as_ref().map(|r| (r.id, r.state, r.errors))));
    Effect::new(move |previous: Option<()>| {
        let key = (reason.get(), page_no.get(), run_key.get());
        if previous.is_none() {
            return; // what the page came with is current
        }
        leptos::task::spawn_local(async move {
            let result = dead_letters(env.to_string(), Some(key.0.clone()), key.1).await;
            // an answer to a question no longer asked is dropped
            if (reason.get_untracked(), page_no.get_untracked(), run_key.get_untracked()) == key {
                shown.set(result.map_err(|e| e.to_string()));
            }
        });
    });
    let csv = move || {
        let r = reason.get();
        if r.is_empty() {
            format!("/env/{env}/dead-letters.csv")
        } else {
            format!("/env/{env}/dead-letters.csv?reason={r}")
        }
    };
    view! {
        <div class="controls-head">
            <h2 id="dead-heading">"Rejected rows"</h2>
            <a class="button" href=csv download data-testid="dead-letters-csv">"Export CSV"</a>
        </div>
        {move || match shown.get() {
            Err(message) => Either::Left(view! { <ErrorNotice message/> }),
            Ok(page) => Either::Right(dead_letter_table(page, reason, page_no)),
        }}
    }
}

/// One page of rejected rows with its filter and pager.
fn dead_letter_table(
    page: crate::domain::live::DeadLetterPage,
    reason: RwSignal<String>,
    page_no: RwSignal<i64>,
) -> impl IntoView {
    let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
    let current = page.page;
    let total: i64 = page.reasons.iter().map(|(_, n)| n).sum();
    let chosen = reason.get_untracked();
    view! {
        <label class="filter">"Reason "
            <select data-testid="reason-filter" on:change=move |e| { reason.set(event_target_value(&e)); page_no.set(1); }>
                <option value="" selected=chosen.is_empty()>{format!("all ({})", format_count(total))}</option>
                {page.reasons.into_iter().map(|(r, n)| {
                    let selected = r == chosen;
                    view! { <option value=r.clone() selected=selected>{format!("{r} ({})", format_count(n))}</option> }
                }).collect_view()}
            </select>
        </label>
        {if page.rows.is_empty() {
            Either::Left(view! { <p class="empty" data-testid="dead-letters-empty">"No rejected rows."</p> })
        } else {
            Either::Right(view! {
                <table class="table" data-testid="dead-letters">
                    <thead><tr><th>"Project id"</th><th>"Reason"</th><th>"Run"</th></tr></thead>
                    <tbody>
                        {page.rows.into_iter().map(|d| view! {
                            <tr><td>{d.project_id}</td><td><code>{d.reason}</code></td><td>{format!("#{}", d.run_id)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })
        }}
        <div class="pager">
            {(pages > 1).then(|| view! {
                <button class="button" disabled={current <= 1} on:click=move |_| page_no.update(|p| *p = (*p - 1).max(1))>"Previous"</button>
            })}
            <span data-testid="dead-letters-page">{format!("page {current} of {pages} · {} rows", format_count(page.total))}</span>
            {(pages > 1).then(|| view! {
                <button class="button" disabled={current >= pages} on:click=move |_| page_no.update(|p| *p += 1)>"Next"</button>
            })}
        </div>
    }
}

#[component]
fn History(env: Environment, live: RwSignal<LiveView>) -> impl IntoView {
    view! {
        <h2 id="history-heading">"Run history"</h2>
        {move || {
            let history = live.get().history;
            if history.is_empty() {
                return Either::Left(view! { <p class="empty">"No runs yet."</p> });
            }
            Either::Right(view! {
                <div class="table-scroll">
                <table class="table" data-testid="history">
                    <thead><tr>
                        <th>"Run"</th><th>"Kind"</th><th>"Outcome"</th><th>"Started by"</th><th>"Started"</th>
                        <th>"Chunk"</th><th>"Created"</th><th>"Skipped"</th><th>"Rejected"</th><th>"Duration"</th><th>"Ledger"</th>
                    </tr></thead>
                    <tbody>
                        {history.into_iter().map(|run| view! {
                            <tr>
                                <td>{format!("#{}", run.id)}</td>
                                <td>{run.kind.as_str()}</td>
                                <td><span class=format!("run-state run-state-{}", run.state.as_str())>{run.state.as_str()}</span></td>
                                <td>{run.started_by.clone()}</td>
                                <td>{format_epoch_ms(run.created_at)}</td>
                                <td>{format_count(run.chunk_size)}</td>
                                <td>{format_count(run.created())}</td>
                                <td>{format_count(run.skipped())}</td>
                                <td>{format_count(run.errors)}</td>
                                <td>{format_duration(run.duration_ms() as f64 / 1000.0)}</td>
                                <td><a href=format!("/env/{env}/runs/{}/ledger.csv", run.id) download>"CSV"</a></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
            })
        }}
    }
}

/// The six phases, from what happened here.
#[component]
fn PhaseStepper(live: RwSignal<LiveView>) -> impl IntoView {
    move || {
        let phases = live.read().phases.clone();
        view! {
            <ol class="stepper" data-testid="phases">
                {phases.into_iter().map(|(phase, status)| {
                    let reason = match &status { PhaseStatus::Blocked(r) => Some(r.clone()), _ => None };
                    view! {
                        <li class=format!("step step-{}", status.as_str()) data-testid=format!("phase-{}", phase_id(phase)) title=reason.clone().unwrap_or_default()>
                            <span class="step-name">{phase.label()}</span>
                            <span class="step-status">{status.as_str().replace('_', " ")}</span>
                        </li>
                    }
                }).collect_view()}
            </ol>
        }
    }
}

fn phase_id(phase: Phase) -> &'static str {
    match phase {
        Phase::DryRun => "dry-run",
        Phase::Backfill => "backfill",
        Phase::Verify => "verify",
        Phase::FlagOn => "flag-on",
        Phase::SignOff => "sign-off",
        Phase::Done => "done",
    }
}

/// `ENABLE_STI` here: its state, the switch (operators), and its history.
#[component]
fn FlagCard(env: Environment, live: RwSignal<LiveView>, role: Role, flash: Flash) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let override_reason = RwSignal::new(String::new());
    let toggle = Action::new(move |(on, confirm, reason, over): &(bool, String, String, String)| {
        let over = Some(over.clone()).filter(|o| !o.trim().is_empty());
        set_flag(env.to_string(), *on, confirm.clone(), reason.clone(), over)
    });
    Effect::new(move |_| {
        if let Some(result) = toggle.value().get() {
            say(flash, &result, |_| format!("ENABLE_STI changed in {env}; applications read it at once."));
        }
    });
    let on = move || live.read().flag_on;
    let verified = move || live.read().phases.iter().any(|(p, s)| *p == Phase::Verify && s.is_done());
    let needs_name = env == Environment::Prod;
    view! {
        <div class="controls-head">
            <h2 id="flag-heading">"ENABLE_STI"</h2>
            {role.allows(Role::Operator).then(|| view! {
                <button class=move || if on() { "button button-danger" } else { "button button-primary" } data-testid="flag-toggle"
                    on:click=move |_| confirming.set(true)>
                    {move || if on() { "Turn off…" } else { "Turn on…" }}
                </button>
            })}
        </div>
        <p class="flag-state">
            <span class=move || if on() { "badge badge-on" } else { "badge badge-off" } data-testid="flag-state">{move || if on() { "on" } else { "off" }}</span>
            {move || if on() { " Applications here read projects through the subtype tables." } else { " Applications here read the legacy columns." }}
        </p>
        <Show when=move || confirming.get()>
            <div class="confirm" role="alertdialog" aria-labelledby="flag-confirm-text" data-testid="flag-confirm">
                <p id="flag-confirm-text">{move || if on() { format!("Turn ENABLE_STI off in {env}? Applications fall back to the legacy columns at once.") } else { format!("Turn ENABLE_STI on in {env}? Applications read through the subtype tables at once.") }}</p>
                <label>"Why (kept in the audit log)"<input data-testid="flag-reason" prop:value=reason on:input=move |e| reason.set(event_target_value(&e))/></label>
                {move || (!on() && !verified() && role == Role::Admin).then(|| view! {
                    <label>"Not verified: override the gate because…"<input data-testid="flag-override" prop:value=override_reason on:input=move |e| override_reason.set(event_target_value(&e))/></label>
                })}
                {needs_name.then(|| view! {
                    <label>{format!("Type {env} to confirm")}<input data-testid="flag-confirm-name" autocomplete="off" prop:value=typed on:input=move |e| typed.set(event_target_value(&e))/></label>
                })}
                <div class="control-row">
                    <button class="button button-danger" data-testid="flag-confirm-yes"
                        disabled=move || (needs_name && typed.get().trim() != env.as_str()) || toggle.pending().get()
                        on:click=move |_| {
                            toggle.dispatch((!on(), typed.get_untracked(), reason.get_untracked(), override_reason.get_untracked()));
                            confirming.set(false);
                            typed.set(String::new());
                        }>"Confirm"</button>
                    <button class="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </div>
            </div>
        </Show>
        <h3 class="subhead">"History"</h3>
        {move || {
            let history = live.read().flag_history.clone();
            if history.is_empty() {
                Either::Left(view! { <p class="empty" data-testid="flag-history">"Never changed."</p> })
            } else {
                Either::Right(view! {
                    <ul class="flag-history" data-testid="flag-history">
                        {history.into_iter().map(|c| view! {
                            <li>
                                <span class=if c.enabled { "badge badge-on" } else { "badge badge-off" }>{if c.enabled { "on" } else { "off" }}</span>
                                {format!(" {} · {}{}", format_epoch_ms(c.at), c.actor, if c.action == "emergency_stop" { " · emergency stop" } else { "" })}
                                {c.reason.map(|r| view! { <span class="muted">{format!(" — {r}")}</span> })}
                            </li>
                        }).collect_view()}
                    </ul>
                })
            }
        }}
    }
}

/// The post-rollout checklist: each item's newest sign-off, and a form for those who may sign it.
#[component]
fn ChecklistCard(env: Environment, live: RwSignal<LiveView>, role: Role, flash: Flash) -> impl IntoView {
    let sign = Action::new(move |(item, state, comment, evidence): &(i64, SignState, String, String)| {
        sign_checklist(env.to_string(), *item, *state, comment.clone(), evidence.clone())
    });
    Effect::new(move |_| {
        if let Some(result) = sign.value().get() {
            say(flash, &result, |_| "Signed; the previous sign-off stays in the history.".into());
        }
    });
    let retire = Action::new(move |id: &i64| retire_checklist_item(*id));
    Effect::new(move |_| {
        if let Some(result) = retire.value().get() {
            say(flash, &result, |_| "Retired from the template; its sign-offs stay in the history.".into());
        }
    });
    let admin = role == Role::Admin;
    view! {
        <h2 id="checklist-heading">"Post-rollout checklist"</h2>
        {move || {
            let entries = live.read().checklist.clone();
            let signed = entries.iter().filter(|e| e.state().is_signed()).count();
            view! {
                <p class="muted" data-testid="checklist-tally">{format!("{signed} of {} signed", entries.len())}</p>
                <ol class="checklist">
                    {entries.into_iter().map(|entry| {
                        let id = entry.item.id;
                        let may_sign = role.allows(entry.item.owner_role);
                        let state = entry.state();
                        view! {
                            <li class="check" data-testid=format!("check-{id}")>
                                <div class="check-head">
                                    <span class=format!("check-state check-{}", state.as_str())>{state.as_str()}</span>
                                    <span class="check-title">{entry.item.title.clone()}</span>
                                    <span class="muted">{format!("owner: {}", entry.item.owner_role)}</span>
                                </div>
                                {entry.latest.clone().map(|s| view! {
                                    <p class="muted check-signed">
                                        {format!("{} by {} · {}", s.state.as_str(), s.signed_by, format_epoch_ms(s.signed_at))}
                                        {(!s.comment.is_empty()).then(|| format!(" — {}", s.comment))}
                                        {s.evidence_url.map(|u| view! { " · " <a href=u.clone() rel="noopener noreferrer" target="_blank">"evidence"</a> })}
                                        {(entry.signoffs > 1).then(|| format!(" ({} sign-offs)", entry.signoffs))}
                                    </p>
                                })}
                                {may_sign.then(|| view! { <SignForm id sign/> })}
                                {admin.then(|| view! {
                                    <details class="sign">
                                        <summary data-testid=format!("retire-open-{id}")>"Retire…"</summary>
                                        <button class="button" data-testid=format!("retire-{id}") disabled=move || retire.pending().get()
                                            on:click=move |_| { retire.dispatch(id); }>"Retire this item from the template, in every environment"</button>
                                    </details>
                                })}
                            </li>
                        }
                    }).collect_view()}
                </ol>
            }
        }}
        {admin.then(|| view! { <TemplateForm flash/> })}
    }
}

/// Admins add an item to the checklist template; every environment gets it.
#[component]
fn TemplateForm(flash: Flash) -> impl IntoView {
    let title = RwSignal::new(String::new());
    let owner = RwSignal::new(Role::Viewer);
    let add = Action::new(move |(title, owner): &(String, Role)| {
        add_checklist_item(title.clone(), owner.as_str().to_owned())
    });
    Effect::new(move |_| {
        if let Some(result) = add.value().get() {
            if result.is_ok() {
                title.set(String::new());
            }
            say(flash, &result, |id| format!("Item #{id} added to the template, in every environment."));
        }
    });
    view! {
        <form class="control-row template-form" on:submit=move |e| { e.prevent_default(); add.dispatch((title.get_untracked(), owner.get_untracked())); }>
            <label>"New item"<input data-testid="template-title" maxlength="200" prop:value=title on:input=move |e| title.set(event_target_value(&e))/></label>
            <label>"Signed by"
                <select data-testid="template-owner" on:change=move |e| owner.set(Role::parse(&event_target_value(&e)).unwrap_or(Role::Viewer))>
                    {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str() selected=r == Role::Viewer>{r.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <button class="button" type="submit" data-testid="template-add" disabled=move || add.pending().get() || title.get().trim().is_empty()>"Add to the template"</button>
        </form>
    }
}

#[component]
fn SignForm(
    id: i64,
    sign: Action<(i64, SignState, String, String), Result<(), ServerFnError>>,
) -> impl IntoView {
    let state = RwSignal::new(SignState::Pass);
    let comment = RwSignal::new(String::new());
    let evidence = RwSignal::new(String::new());
    view! {
        <details class="sign">
        <summary data-testid=format!("sign-open-{id}")>"Sign…"</summary>
        <div class="control-row sign-form">
            <label>"State"
                <select data-testid=format!("sign-state-{id}") on:change=move |e| state.set(SignState::parse(&event_target_value(&e)).unwrap_or(SignState::Pass))>
                    {SignState::ALL.into_iter().map(|s| view! { <option value=s.as_str() selected=s == SignState::Pass>{s.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Comment"<input data-testid=format!("sign-comment-{id}") prop:value=comment on:input=move |e| comment.set(event_target_value(&e))/></label>
            <label>"Evidence link"<input type="url" data-testid=format!("sign-evidence-{id}") prop:value=evidence on:input=move |e| evidence.set(event_target_value(&e))/></label>
            <button class="button" data-testid=format!("sign-{id}") disabled=move || sign.pending().get()
                on:click=move |_| { sign.dispatch((id, state.get_untracked(), comment.get_untracked(), evidence.get_untracked())); }>"Sign"</button>
        </div>
        </details>
    }
}
