//! `/env/:env`: one environment's rollout — the active or last run with live progress and
//! charts, the operator's controls, verification, rejected rows and the run history. Live
//! figures arrive as server-sent events; the page never needs a reload.
//!
//! This file holds the page and its island; each card is a part of its own below.

mod checklist;
mod controls;
mod flag;
mod history;
mod next;
mod notifications;
mod progress;
mod reports;
mod verification;
mod waiting;

use crate::api::environment::get_environment;
use crate::domain::access::Role;
use crate::domain::environment::Environment;
use crate::domain::live::{EnvironmentPage, LiveView};
use crate::ui::components::async_view::AsyncView;
use crate::ui::components::flash::{Flash, FlashLine};
use crate::ui::components::incident::IncidentNotice;
use crate::ui::erase;
use checklist::ChecklistCard;
use controls::RunControls;
use flag::FlagCard;
use history::{History, PhaseStepper};
use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use next::NextStepCard;
use notifications::NotificationsCard;
use progress::{RunCharts, RunProgress};
use verification::{DeadLetters, VerificationCard};

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
        <AsyncView resource=page view=|page: EnvironmentPage| view! { <EnvironmentBody page=drawn(page)/> }/>
    }
}

/// The page with its charts drawn: the island gets them drawn, as it gets each update.
#[cfg(feature = "ssr")]
fn drawn(mut page: EnvironmentPage) -> EnvironmentPage {
    page.live.charts = crate::ui::charts::draw(&page.live);
    page
}

/// In the browser the page arrives drawn.
#[cfg(not(feature = "ssr"))]
fn drawn(page: EnvironmentPage) -> EnvironmentPage {
    page
}

#[island]
fn EnvironmentBody(page: EnvironmentPage) -> impl IntoView {
    let env = page.live.environment;
    let live = RwSignal::new(page.live);
    let connection = RwSignal::new(Connection::Connecting);
    let flash: Flash = RwSignal::new(None);
    let operator = page.role.allows(Role::Operator);
    let asked: next::Asked = RwSignal::new(None);
    Effect::new(move |_| subscribe(env, live, connection));
    // a banner goes once what it spoke of has moved on: a run began or ended after it
    let run_context = Memo::new(move |_| live.read().run.as_ref().map(|r| (r.id, r.state.is_final())));
    crate::ui::components::flash::expire_on(flash, run_context);
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
        {move || live.read().incident.clone().map(|incident| view! {
            // the next push drops it once acknowledged
            <IncidentNotice incident operator on_acknowledged=|_| ()/>
        })}
        {page.keys_off.map(|notice| view! { <p class="notice notice-warn" role="status" data-testid="keys-off">{notice}</p> })}
    });
    let next = erase(view! { <NextStepCard live operator asked/> });
    let plan = erase(view! {
        <section class="card" aria-label="Phases">
            <PhaseStepper live/>
        </section>
    });
    let progress = erase(view! {
        <section class="card" aria-labelledby="run-heading">
            <RunProgress live operator asked/>
        </section>
    });
    let controls = operator.then(|| {
        erase(view! { <RunControls env live role=page.role flash max_workers=page.max_workers asked/> })
    });
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
                <VerificationCard env live operator flash asked/>
            </section>
            <section class="card" aria-labelledby="dead-heading">
                <DeadLetters env live first=dead_letters/>
            </section>
        </div>
    });
    let rollout = erase(view! {
        <div class="two-col">
            <section class="card" aria-labelledby="flag-heading">
                <FlagCard env live role=page.role flash asked/>
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
                    <p class="empty">"None configured for this environment yet: an admin adds them to the console's config file ([[contacts."{env.as_str()}"]] entries)."</p>
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
    let notifications = page.notifications;
    let notifications = erase(view! {
        <section class="card" aria-labelledby="notifications-heading" data-testid="notifications">
            <NotificationsCard env notifications/>
        </section>
    });
    let history = erase(view! {
        <section class="card" aria-labelledby="history-heading">
            <History env live/>
        </section>
    });
    // ordered by what a person does: where it stands and what is next, the controls, the flag and
    // the checklist, then the charts, the reports and the history
    view! { {head} {next} {plan} {progress} {controls} {rollout} {charts} {checks} {contacts} {notifications} {history} }
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
        <span class=move || match connection.get() {
            Connection::Connecting => "live live-connecting",
            Connection::Live => "live live-live",
            Connection::Reconnecting => "live live-reconnecting",
        } data-testid="live" role="status">
            {move || match connection.get() {
                Connection::Connecting => "connecting…",
                Connection::Live => "live",
                Connection::Reconnecting => "reconnecting…",
            }}
        </span>
    }
}
