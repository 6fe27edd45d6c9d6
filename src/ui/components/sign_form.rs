//! The form that signs one checklist item in one environment: no state chosen for the signer, a
//! refusal said beside the form (which stays open with what was typed), and on success the
//! caller's `on_signed` (the lists key their items by sign-off count, so the signed item is
//! drawn anew and its form closes).

use crate::api::rollout::sign_checklist;
use crate::domain::checklist::SignState;
use crate::domain::environment::Environment;
use leptos::prelude::*;

#[component]
pub fn SignForm(env: Environment, id: i64, #[prop(into)] on_signed: Callback<()>) -> impl IntoView {
    // nothing chosen for the signer: a sign-off is a decision, not a default
    let state: RwSignal<Option<SignState>> = RwSignal::new(None);
    let comment = RwSignal::new(String::new());
    let evidence = RwSignal::new(String::new());
    let sign = Action::new(move |(state, comment, evidence): &(SignState, String, String)| {
        sign_checklist(env.to_string(), id, *state, comment.clone(), evidence.clone())
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = sign.value().get() {
            on_signed.run(());
        }
    });
    view! {
        <details class="sign">
        <summary data-testid=format!("sign-open-{env}-{id}")>"Sign…"</summary>
        <div class="control-row sign-form">
            <label>"State"
                <select data-testid=format!("sign-state-{env}-{id}") on:change=move |e| state.set(SignState::parse(&event_target_value(&e)))>
                    <option value="" selected disabled>"choose…"</option>
                    {[SignState::Pass, SignState::Fail, SignState::Waived].into_iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Comment"<input data-testid=format!("sign-comment-{env}-{id}") prop:value=comment on:input=move |e| comment.set(event_target_value(&e))/></label>
            <label>"Evidence link"<input type="url" data-testid=format!("sign-evidence-{env}-{id}") prop:value=evidence on:input=move |e| evidence.set(event_target_value(&e))/></label>
            <button class="button" data-testid=format!("sign-{env}-{id}") disabled=move || sign.pending().get() || state.get().is_none()
                on:click=move |_| {
                    if let Some(chosen) = state.get_untracked() {
                        sign.dispatch((chosen, comment.get_untracked(), evidence.get_untracked()));
                    }
                }>"Sign"</button>
        </div>
        {move || sign.value().get().and_then(Result::err).map(|e| view! {
            <p class="field-error" role="alert" data-testid=format!("sign-error-{env}-{id}")>
                {crate::ui::components::flash::sentence(&e)}
            </p>
        })}
        </details>
    }
}
