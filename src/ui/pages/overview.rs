//! `/`: every environment at a glance.

use crate::api::overview::get_overview;
use crate::domain::access::Role;
use crate::domain::calendar::Day;
use crate::domain::format::{format_count, format_percent, time_of_day};
use crate::domain::live::Stopped;
use crate::domain::overview::{Overview, TableCounts};
use crate::domain::phases::holding_back;
use crate::domain::timeline::{window_label, Timeline};
use crate::ui::components::async_view::AsyncView;
use crate::ui::components::confirm::{Confirm, ConfirmIds};
use crate::ui::components::environment_panel::EnvironmentPanel;
use crate::ui::components::incident::IncidentNotice;
use crate::ui::erase;
use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

/// The overview page: a summary line and one panel per environment, refreshable in place.
#[component]
pub fn OverviewPage() -> impl IntoView {
    // the island is not nested in a view that waits for a resource: such a view renders its
    // children again when the resource resolves, and every render of the island fetched the
    // overview (each environment's row counts) once more
    view! {
        <Title text="Overview"/>
        <OverviewLive role=signed_in_role()/>
    }
}

/// Who is signed in, from the request the session guard let through (pages are rendered on the
/// server only; the browser gets the role as the island's prop and never asks).
fn signed_in_role() -> Role {
    #[cfg(feature = "ssr")]
    {
        crate::api::signed_in().map_or(Role::Viewer, |u| u.role)
    }
    #[cfg(not(feature = "ssr"))]
    {
        Role::Viewer
    }
}

/// The page's live part: its figures re-read whenever something changes.
#[island]
fn OverviewLive(role: Role) -> impl IntoView {
    let refreshes = RwSignal::new(0_u32);
    let overview = Resource::new(move || refreshes.get(), |_| get_overview());
    let pending = RwSignal::new(false);
    provide_context(Shared { refreshes, role });
    Effect::new(move |_| follow_changes(refreshes));
    view! {
        <div class="page-head">
            <div>
                <h1>"Rollout overview"</h1>
                <p class="lede">
                    "How far each environment's legacy projects are split into school and self-study projects."
                </p>
            </div>
            <div class="head-side">
                <StopAll/>
                <button
                    class="button"
                    data-testid="refresh"
                    on:click=move |_| refreshes.update(|n| *n += 1)
                    disabled=move || pending.get()
                >
                    {move || if pending.get() { "Refreshing…" } else { "Refresh figures" }}
                </button>
            </div>
        </div>
        <AsyncView resource=overview pending=pending view=|overview: Overview| view! { <OverviewBody overview/> }/>
    }
}

#[component]
fn OverviewBody(overview: Overview) -> impl IntoView {
    let readable: Vec<TableCounts> =
        overview.environments.iter().filter_map(|e| e.counts.clone().ok()).collect();
    let total = TableCounts {
        legacy: readable.iter().map(|c| c.legacy).sum(),
        school: readable.iter().map(|c| c.school).sum(),
        self_study: readable.iter().map(|c| c.self_study).sum(),
    };
    let flags_on =
        overview.environments.iter().filter(|e| e.enable_sti.as_ref().is_some_and(|f| f.enabled)).count();
    let environments = overview.environments.len();
    let next_steps = crate::domain::next_step::of_overview(&overview);
    // each environment's planned last day, once a D-day is set: the forecast is told against it
    let window_ends: Vec<_> = overview
        .timeline
        .as_ref()
        .ok()
        .filter(|t| t.d_day.is_some())
        .map(|t| t.environments.iter().map(|e| (e.environment, e.planned_end)).collect())
        .unwrap_or_default();
    let holding = holding_back(
        &overview.environments.iter().map(|e| (e.environment, &e.phases[..])).collect::<Vec<_>>(),
    );
    let Shared { refreshes, role } = expect_context::<Shared>();
    let operator = role.allows(Role::Operator);
    let incidents = overview.incidents.clone();
    view! {
        // an emergency stop nobody acknowledged comes first
        {incidents.into_iter().map(|incident| view! {
            <IncidentNotice incident operator on_acknowledged=move |_| refreshes.update(|n| *n += 1)/>
        }).collect_view()}
        <section class="summary" aria-label="All environments">
            <div class="stat">
                <span class="stat-label">"Legacy projects, all environments"</span>
                <span class="stat-value" data-testid="total-legacy">{format_count(total.legacy)}</span>
            </div>
            <div class="stat">
                <span class="stat-label">"Split into subtypes"</span>
                <span class="stat-value">{format_percent(total.coverage())}</span>
            </div>
            <div class="stat">
                <span class="stat-label">"ENABLE_STI on"</span>
                <span class="stat-value">{format!("{flags_on} of {environments}")}</span>
            </div>
            <p class="read-at">"Figures read at "<time data-testid="read-at" datetime=overview.read_at.clone()>{time_of_day(&overview.read_at)}</time></p>
        </section>
        {erase(view! { <section class="card matrix" aria-labelledby="matrix-heading">
            <h2 id="matrix-heading">"Rollout phases"</h2>
            <p class="scroll-hint" aria-hidden="true">"Six phases: scroll the table sideways →"</p>
            <div class="table-scroll">
                <table class="table" data-testid="phase-matrix">
                    <thead><tr>
                        <th>"Environment"</th>
                        {crate::domain::phases::Phase::ALL.iter().map(|p| view! { <th>{p.label()}</th> }).collect_view()}
                    </tr></thead>
                    <tbody>
                        {overview.environments.iter().map(|e| {
                            let env = e.environment.as_str();
                            view! {
                                <tr data-testid=format!("phases-{env}")>
                                    <td><a href=format!("/env/{env}")>{e.environment.label()}</a></td>
                                    {e.phases.iter().map(|(phase, status)| view! {
                                        <td>
                                            <span class=format!("step-pill step-{}", status.as_str())>{status.label(*phase)}</span>
                                            {status.reason(*phase).map(|why| view! { <span class="step-reason">{why}</span> })}
                                        </td>
                                    }).collect_view()}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <h3 class="gates-heading">"Gates holding an environment back"</h3>
            {holding.is_empty().then(|| view! { <p class="muted" data-testid="no-gates">"None: no environment waits for another."</p> })}
            <ul class="gates" data-testid="gates">
                {holding.into_iter().map(|gate| {
                    let class = if gate.verdict.is_ok() { "gate gate-open" } else { "gate gate-closed" };
                    let what = match gate.kind {
                        "backfill" => format!("{} live backfill:", gate.environment.label()),
                        _ => format!("ENABLE_STI on in {}:", gate.environment),
                    };
                    view! {
                        <li data-testid=format!("gate-{}-{}", gate.kind, gate.environment)
                            class=class>
                            <strong>{what}</strong>
                            {match gate.verdict { Ok(()) => " open".to_owned(), Err(why) => format!(" closed: {why}") }}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section> })}
        {erase(view! { <TimelineSection timeline=overview.timeline/> })}
        <section class="env-grid" aria-label="Environments">
            {overview
                .environments
                .into_iter()
                .zip(next_steps)
                .map(|(status, next)| {
                    let window_end = window_ends.iter().find(|(e, _)| *e == status.environment).map(|(_, end)| *end);
                    view! { <EnvironmentPanel status next window_end read_at_ms=overview.read_at_ms/> }
                })
                .collect_view()}
        </section>
    }
}

const STOP_ALL: ConfirmIds = ConfirmIds {
    dialog: "stop-all-confirm",
    reason: "stop-all-reason",
    name: "stop-all-name",
    yes: "stop-all-yes",
    no: "stop-all-no",
};

/// Emergency stop everywhere, for operators: cancels every active run and turns `ENABLE_STI` off
/// in every environment, after `all` is typed and a reason given.
#[component]
fn StopAll() -> impl IntoView {
    let Shared { role, .. } = expect_context::<Shared>();
    let open = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let stop = Action::new(move |(confirm, reason): &(String, String)| {
        crate::api::environment::emergency_stop("all".into(), confirm.clone(), reason.clone())
    });
    view! {
        {role.allows(Role::Operator).then(|| view! {
            <button class="button button-danger stop-all" data-testid="stop-all" on:click=move |_| open.set(true)>
                "Emergency stop all"
            </button>
        })}
        <Show when=move || open.get()>
            <Confirm
                text="Cancel every active run and turn ENABLE_STI off in dev, staging and prod.".to_owned()
                ids=STOP_ALL
                reason=Some(reason)
                reason_required=true
                type_to_confirm=Some("all".to_owned())
                busy=stop.pending()
                wide=true
                yes_label="Stop everything"
                on_yes=Callback::new(move |typed: String| {
                    stop.dispatch((typed, reason.get_untracked()));
                    open.set(false);
                })
                on_no=Callback::new(move |()| open.set(false))
            />
        </Show>
        {move || stop.value().get().map(|result| match result {
            Ok(stopped) => Either::Left(view! {
                <div class="notice notice-ok confirm-wide" role="status" data-testid="stop-all-done">
                    {Stopped::describe(&stopped, " · ")}
                </div>
            }),
            Err(error) => Either::Right(view! { <div class="notice notice-error confirm-wide" role="alert">{error.to_string()}</div> }),
        })}
    }
    .into_any()
}

/// Re-reads the overview whenever the server says what it shows changed (`GET /events`): a run,
/// a verification, a flag, a sign-off, the D-day — from this console or the CLI.
#[cfg(feature = "hydrate")]
fn follow_changes(refreshes: RwSignal<u32>) {
    crate::ui::events::listen("/events", "changed", move |_| refreshes.update(|n| *n += 1), |_| {});
}

#[cfg(not(feature = "hydrate"))]
fn follow_changes(_: RwSignal<u32>) {}

/// What the overview's parts share: its refresh counter (bumped by parts that change what it
/// shows) and the signed-in user's role (read on the server).
#[derive(Clone, Copy)]
struct Shared {
    refreshes: RwSignal<u32>,
    role: Role,
}

/// The D-day calendar: each environment's planned window against what happened, late or at
/// risk marked; admins change the D-day here.
#[component]
fn TimelineSection(timeline: Result<Timeline, String>) -> impl IntoView {
    let body = match timeline {
        Err(error) => Either::Left(view! { <p class="notice notice-error" role="alert">{error}</p> }),
        Ok(timeline) => Either::Right(view! {
            <p class="lede" data-testid="d-day">
                {match timeline.d_day {
                    Some(d) => format!("D-day {} ({d}), {} · today {}", d.short(), timeline.source, timeline.today),
                    None => "No D-day is set yet: an admin sets it here or with sti-rollout timeline --set.".to_owned(),
                }}
            </p>
            {(!timeline.environments.is_empty()).then(|| view! {
                <div class="table-scroll">
                    <table class="table" data-testid="timeline">
                        <thead><tr><th>"Environment"</th><th>"Schedule"</th><th>"Planned"</th><th>"Actual"</th></tr></thead>
                        <tbody>
                            {timeline.environments.into_iter().map(|e| {
                                let env = e.environment.as_str();
                                let actual = e.actual.describe(Day::short);
                                view! {
                                    <tr data-testid=format!("timeline-{env}")>
                                        <td>{e.environment.label()}</td>
                                        <td><span class=format!("sched-pill sched-{}", e.schedule.as_str()) data-testid=format!("schedule-{env}")>{e.schedule.describe()}</span></td>
                                        <td>{format!("{} · {} → {}", window_label(e.environment), e.planned_start.short(), e.planned_end.short())}</td>
                                        <td>{actual}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
        }),
    };
    view! {
        <section class="card" aria-labelledby="timeline-heading">
            <div class="card-head">
                <h2 id="timeline-heading">"Timeline"</h2>
                <DDayForm/>
            </div>
            {body}
        </section>
    }
}

/// Admins set or clear the D-day, with a reason for the audit log.
#[component]
fn DDayForm() -> impl IntoView {
    let Shared { role, refreshes } = expect_context::<Shared>();
    let date = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let save = Action::new(move |(date, reason): &(String, String)| {
        crate::api::rollout::set_d_day(date.clone(), reason.clone())
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = save.value().get() {
            refreshes.update(|n| *n += 1);
        }
    });
    (role == Role::Admin).then(|| view! {
                <form class="d-day-form" on:submit=move |e| { e.prevent_default(); save.dispatch((date.get_untracked(), reason.get_untracked())); }>
                    <label>"D-day"<input type="date" data-testid="d-day-input" prop:value=date on:input=move |e| date.set(event_target_value(&e))/></label>
                    <label>"Why"<input data-testid="d-day-reason" prop:value=reason on:input=move |e| reason.set(event_target_value(&e))/></label>
                    <button class="button" type="submit" data-testid="d-day-save" disabled=move || save.pending().get()>"Set D-day"</button>
                </form>
                {move || save.value().get().and_then(Result::err).map(|error| view! { <p class="notice notice-error" role="alert">{error.to_string()}</p> })}
    })
}
