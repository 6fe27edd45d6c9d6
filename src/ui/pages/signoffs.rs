//! `/signoffs`: one person's sign-offs across environments — the checklist items their role
//! owns, open ones first, each with its sign form — so a stakeholder need not walk three pages.

use crate::api::rollout::my_signoffs;
use crate::domain::checklist::{ChecklistEntry, MySignoffs};
use crate::domain::environment::Environment;
use crate::ui::components::async_view::AsyncView;
use crate::ui::components::sign_form::SignForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SignoffsPage() -> impl IntoView {
    view! {
        <Title text="My sign-offs"/>
        <SignoffsLive/>
    }
}

#[island]
fn SignoffsLive() -> impl IntoView {
    let refreshes = RwSignal::new(0_u32);
    let mine = Resource::new(move || refreshes.get(), |_| my_signoffs());
    view! {
        <div class="page-head">
            <div>
                <h1>"My sign-offs"</h1>
                <p class="lede">"The post-rollout checklist items your role owns, in every environment."</p>
            </div>
        </div>
        <AsyncView resource=mine view=move |mine: MySignoffs| view! { <Mine mine refreshes/> }/>
    }
}

#[component]
fn Mine(mine: MySignoffs, refreshes: RwSignal<u32>) -> impl IntoView {
    let open = mine.open();
    view! {
        <p class="muted" data-testid="signoffs-summary">{match open {
            0 => format!("Nothing open: every item {} owns is signed (pass or waived).", mine.role.with_article()),
            n => format!("{n} open across environments, for {}. Items of other roles are signed on each environment's page.", mine.role.with_article()),
        }}</p>
        {mine.environments.into_iter().map(|(env, entries)| view! {
            <EnvironmentItems env entries refreshes/>
        }).collect_view()}
    }
}

#[component]
fn EnvironmentItems(
    env: Environment,
    entries: Vec<ChecklistEntry>,
    refreshes: RwSignal<u32>,
) -> impl IntoView {
    let (open, done): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| !e.state().is_signed());
    let heading = format!("{} — {} open of {}", env.label(), open.len(), open.len() + done.len());
    let items: Vec<ChecklistEntry> = open.into_iter().chain(done).collect();
    view! {
        <section class="card" data-testid=format!("signoffs-{env}")>
            <div class="controls-head">
                <h2>{heading}</h2>
                <a href=format!("/env/{env}#checklist-heading")>{format!("{env}'s checklist")}</a>
            </div>
            <ol class="checklist">
                // keyed by sign-offs: a re-read that changes nothing of an item keeps it (and its
                // form) as it is, a signed item is drawn anew — a list patched by position would
                // hand one item's open form to the next
                <For
                    each=move || items.clone()
                    key=|entry| (entry.item.id, entry.signoffs)
                    children=move |entry| {
                        let id = entry.item.id;
                        let state = entry.state();
                        view! {
                            <li class="check" data-testid=format!("mine-{env}-{id}")>
                                <div class="check-head">
                                    <span class=format!("check-state check-{}", state.as_str())>{state.as_str()}</span>
                                    <span class="check-title">{entry.item.title.clone()}</span>
                                </div>
                                {entry.latest.as_ref().map(|s| view! { <p class="muted check-signed">{s.describe(entry.signoffs)}</p> })}
                                {(!state.is_signed()).then(|| view! {
                                    <SignForm env id on_signed=move |_| refreshes.update(|n| *n += 1)/>
                                })}
                            </li>
                        }
                    }
                />
            </ol>
        </section>
    }
}
