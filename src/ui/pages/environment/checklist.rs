//! The post-rollout checklist: each item's newest sign-off, the sign form, and the template.

use crate::api::rollout::{add_checklist_item, retire_checklist_item, sign_checklist};
use crate::domain::access::Role;
use crate::domain::checklist::{tally, SignState};
use crate::domain::environment::Environment;
use crate::domain::format::format_epoch_ms;
use crate::domain::live::LiveView;
use crate::ui::components::flash::{report, Flash};
use leptos::prelude::*;

/// The post-rollout checklist: each item's newest sign-off, and a form for those who may sign it.
#[component]
pub(super) fn ChecklistCard(
    env: Environment,
    live: RwSignal<LiveView>,
    role: Role,
    flash: Flash,
) -> impl IntoView {
    let sign = Action::new(move |(item, state, comment, evidence): &(i64, SignState, String, String)| {
        sign_checklist(env.to_string(), *item, *state, comment.clone(), evidence.clone())
    });
    report(sign, flash, |_| "Signed; the previous sign-off stays in the history.".into());
    let retire = Action::new(move |id: &i64| retire_checklist_item(*id));
    report(retire, flash, |_| "Retired from the template; its sign-offs stay in the history.".into());
    let admin = role == Role::Admin;
    view! {
        <h2 id="checklist-heading">"Post-rollout checklist"</h2>
        {move || {
            let entries = live.read().checklist.clone();
            view! {
                <p class="muted" data-testid="checklist-tally">{tally(&entries)}</p>
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

#[component]
fn SignForm(
    id: i64,
    sign: Action<(i64, SignState, String, String), Result<(), ServerFnError>>,
) -> impl IntoView {
    // nothing chosen for the signer: a sign-off is a decision, not a default
    let state: RwSignal<Option<SignState>> = RwSignal::new(None);
    let comment = RwSignal::new(String::new());
    let evidence = RwSignal::new(String::new());
    view! {
        <details class="sign">
        <summary data-testid=format!("sign-open-{id}")>"Sign…"</summary>
        <div class="control-row sign-form">
            <label>"State"
                <select data-testid=format!("sign-state-{id}") on:change=move |e| state.set(SignState::parse(&event_target_value(&e)))>
                    <option value="" selected disabled>"choose…"</option>
                    {[SignState::Pass, SignState::Fail, SignState::Waived].into_iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Comment"<input data-testid=format!("sign-comment-{id}") prop:value=comment on:input=move |e| comment.set(event_target_value(&e))/></label>
            <label>"Evidence link"<input type="url" data-testid=format!("sign-evidence-{id}") prop:value=evidence on:input=move |e| evidence.set(event_target_value(&e))/></label>
            <button class="button" data-testid=format!("sign-{id}") disabled=move || sign.pending().get() || state.get().is_none()
                on:click=move |_| {
                    if let Some(chosen) = state.get_untracked() {
                        sign.dispatch((id, chosen, comment.get_untracked(), evidence.get_untracked()));
                    }
                }>"Sign"</button>
        </div>
        </details>
    }
}
