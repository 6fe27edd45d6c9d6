//! `/`: every environment at a glance.

use crate::api::overview::get_overview;
use crate::domain::overview::{format_count, format_percent, time_of_day, Overview, TableCounts};
use crate::ui::components::async_view::AsyncView;
use crate::ui::components::environment_panel::EnvironmentPanel;
use crate::ui::erase;
use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

/// The overview page: a summary line and one panel per environment, refreshable in place.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let refreshes = RwSignal::new(0_u32);
    let overview = Resource::new(move || refreshes.get(), |_| get_overview());
    let pending = RwSignal::new(false);
    view! {
        <Title text="Overview"/>
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
    view! {
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
                                    {e.phases.iter().map(|(_, status)| {
                                        let reason = match status { crate::domain::phases::PhaseStatus::Blocked(r) => r.clone(), _ => String::new() };
                                        view! { <td><span class=format!("step-pill step-{}", status.as_str()) title=reason>{status.as_str().replace('_', " ")}</span></td> }
                                    }).collect_view()}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section> })}
        <section class="env-grid" aria-label="Environments">
            {overview
                .environments
                .into_iter()
                .map(|status| view! { <EnvironmentPanel status/> })
                .collect_view()}
        </section>
    }
}

/// Emergency stop everywhere, for operators: cancels every active run and turns `ENABLE_STI` off
/// in every environment, after `all` is typed and a reason given.
#[component]
fn StopAll() -> impl IntoView {
    let me = Resource::new(|| (), |_| crate::api::access::whoami());
    let open = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let stop = Action::new(move |(confirm, reason): &(String, String)| {
        crate::api::environment::emergency_stop("all".into(), confirm.clone(), reason.clone())
    });
    let operator = move || {
        me.get().and_then(Result::ok).is_some_and(|me| me.role.allows(crate::domain::access::Role::Operator))
    };
    view! {
        <Suspense>
            <Show when=operator>
                <button class="button button-danger stop-all" data-testid="stop-all" on:click=move |_| open.set(true)>
                    "Emergency stop all"
                </button>
            </Show>
        </Suspense>
        <Show when=move || open.get()>
            <div class="confirm confirm-wide" role="alertdialog" aria-labelledby="stop-all-text" data-testid="stop-all-confirm">
                <p id="stop-all-text">"Cancel every active run and turn ENABLE_STI off in dev, staging and prod."</p>
                <label>"Why (kept in the audit log)"<input data-testid="stop-all-reason" prop:value=reason on:input=move |e| reason.set(event_target_value(&e))/></label>
                <label>"Type all to confirm"<input data-testid="stop-all-name" autocomplete="off" prop:value=typed on:input=move |e| typed.set(event_target_value(&e))/></label>
                <div class="control-row">
                    <button class="button button-danger" data-testid="stop-all-yes"
                        disabled=move || typed.get().trim() != "all" || reason.get().trim().is_empty() || stop.pending().get()
                        on:click=move |_| { stop.dispatch((typed.get_untracked(), reason.get_untracked())); open.set(false); typed.set(String::new()); }>
                        "Stop everything"
                    </button>
                    <button class="button" on:click=move |_| open.set(false)>"Cancel"</button>
                </div>
            </div>
        </Show>
        {move || stop.value().get().map(|result| match result {
            Ok(stopped) => Either::Left(view! {
                <div class="notice notice-ok confirm-wide" role="status" data-testid="stop-all-done">
                    {stopped.iter().map(|s| format!("{}: ENABLE_STI off{}", s.environment,
                        s.cancelled_run.map_or(String::new(), |r| format!(", run #{r} cancelling")))).collect::<Vec<_>>().join(" · ")}
                </div>
            }),
            Err(error) => Either::Right(view! { <div class="notice notice-error confirm-wide" role="alert">{error.to_string()}</div> }),
        })}
    }
    .into_any()
}
