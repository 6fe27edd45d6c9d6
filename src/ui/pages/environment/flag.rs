//! `ENABLE_STI` in this environment: its state, the switch for operators, and its history.

use crate::api::rollout::set_flag;
use crate::domain::access::Role;
use crate::domain::environment::Environment;
use crate::domain::format::format_epoch_ms;
use crate::domain::live::LiveView;
use crate::domain::next_step::{of_live, Action as NextAction};
use crate::domain::phases::Phase;
use crate::ui::components::confirm::{Confirm, ConfirmIds};
use crate::ui::components::flash::{report_success, sentence, Flash};
use leptos::either::Either;
use leptos::prelude::*;

const IDS: ConfirmIds = ConfirmIds {
    dialog: "flag-confirm",
    reason: "flag-reason",
    name: "flag-confirm-name",
    yes: "flag-confirm-yes",
    no: "flag-confirm-no",
};

/// `ENABLE_STI` here: its state, the switch (operators), and its history.
#[component]
pub(super) fn FlagCard(
    env: Environment,
    live: RwSignal<LiveView>,
    role: Role,
    flash: Flash,
    asked: super::next::Asked,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    Effect::new(move |_| {
        if super::next::take(asked, NextAction::FlagOn) {
            confirming.set(true);
        }
    });
    // "Turn on…" is the primary button only when turning it on is the next step
    let next_is_flag = move || of_live(&live.read()).action == Some(NextAction::FlagOn);
    let reason = RwSignal::new(String::new());
    let override_reason = RwSignal::new(String::new());
    let toggle = Action::new(move |(on, confirm, reason, over): &(bool, String, String, String)| {
        let over = Some(over.clone()).filter(|o| !o.trim().is_empty());
        set_flag(env.to_string(), *on, confirm.clone(), reason.clone(), over)
    });
    report_success(toggle, flash, move |_| {
        format!("ENABLE_STI changed in {env}; applications read it at once.")
    });
    // the confirmation closes when the change is made; a refusal keeps it open, said beside it
    Effect::new(move |_| {
        if let Some(Ok(_)) = toggle.value().get() {
            confirming.set(false);
        }
    });
    let on = move || live.read().flag_on;
    let verified = move || live.read().phases.iter().any(|(p, s)| *p == Phase::Verify && s.is_done());
    view! {
        <div class="controls-head">
            <h2 id="flag-heading">"ENABLE_STI"</h2>
            {role.allows(Role::Operator).then(|| view! {
                <button class=move || if on() { "button button-danger" } else if next_is_flag() { "button button-primary" } else { "button" } data-testid="flag-toggle"
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
            <Confirm
                text=Signal::derive(move || if on() {
                    format!("Turn ENABLE_STI off in {env}? Applications fall back to the legacy columns at once.")
                } else {
                    format!("Turn ENABLE_STI on in {env}? Applications read through the subtype tables at once.")
                })
                ids=IDS
                reason=Some(reason)
                type_to_confirm=(env == Environment::Prod).then(|| env.to_string())
                busy=toggle.pending()
                yes_label="Confirm"
                on_yes=Callback::new(move |typed: String| {
                    toggle.dispatch((!on(), typed, reason.get_untracked(), override_reason.get_untracked()));
                })
                on_no=Callback::new(move |()| { confirming.set(false); toggle.value().set(None); })
            >
                {move || (!on() && !verified() && role == Role::Admin).then(|| view! {
                    <label>"Not verified: override the gate because…"<input data-testid="flag-override" prop:value=override_reason on:input=move |e| override_reason.set(event_target_value(&e))/></label>
                })}
            </Confirm>
            {move || toggle.value().get().and_then(Result::err).map(|e| view! {
                <p class="field-error" role="alert" data-testid="flag-refused">{sentence(&e)}</p>
            })}
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
