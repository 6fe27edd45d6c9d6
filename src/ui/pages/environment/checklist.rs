//! The post-rollout checklist: each item's newest sign-off, the sign form, and the template.

use crate::api::rollout::{add_checklist_item, retire_checklist_item};
use crate::domain::access::Role;
use crate::domain::checklist::tally;
use crate::domain::environment::Environment;
use crate::domain::live::LiveView;
use crate::ui::components::flash::{report, Flash};
use crate::ui::components::sign_form::SignForm;
use leptos::prelude::*;

/// The post-rollout checklist: each item's newest sign-off, and a form for those who may sign it.
#[component]
pub(super) fn ChecklistCard(
    env: Environment,
    live: RwSignal<LiveView>,
    role: Role,
    flash: Flash,
) -> impl IntoView {
    let retire = Action::new(move |id: &i64| retire_checklist_item(*id));
    report(retire, flash, |_| "Retired from the template; its sign-offs stay in the history.".into());
    let admin = role == Role::Admin;
    let signed =
        move |_| flash.set(Some((true, "Signed; the previous sign-off stays in the history.".into())));
    view! {
        <h2 id="checklist-heading">"Post-rollout checklist"</h2>
        <p class="muted" data-testid="checklist-tally">{move || tally(&live.read().checklist)}</p>
        <ol class="checklist">
            // keyed by the item's sign-offs: a push that changes nothing of an item leaves it (and
            // a form being filled in) alone; a new sign-off draws it anew, its form closed
            <For
                each=move || live.read().checklist.clone()
                key=|entry| (entry.item.id, entry.signoffs, entry.item.title.clone())
                children=move |entry| {
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
                            {entry.latest.clone().map(|s| view! { <p class="muted check-signed">{s.describe(entry.signoffs)}{s.evidence_url.map(|u| view! { " · " <a href=u.clone() rel="noopener noreferrer" target="_blank">"evidence"</a> })}</p> })}
                            {may_sign.then(|| view! { <SignForm env id on_signed=signed/> })}
                            {admin.then(|| view! {
                                <details class="sign">
                                    <summary data-testid=format!("retire-open-{id}")>"Retire…"</summary>
                                    <button class="button" data-testid=format!("retire-{id}") disabled=move || retire.pending().get()
                                        on:click=move |_| { retire.dispatch(id); }>"Retire this item from the template, in every environment"</button>
                                </details>
                            })}
                        </li>
                    }
                }
            />
        </ol>
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
    report(add, flash, move |id| {
        title.set(String::new());
        format!("Item #{id} added to the template, in every environment.")
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
