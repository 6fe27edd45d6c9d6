//! The typed confirmation in front of every risky action: what is about to happen in a sentence,
//! a reason for the audit log where one is asked, and, where a slip would cost most, the name of
//! what is acted on typed out before the button enables.

use leptos::prelude::*;

/// The dialog's test ids, kept as the end-to-end tests know them.
#[derive(Clone, Copy, Debug)]
pub struct ConfirmIds {
    pub dialog: &'static str,
    pub reason: &'static str,
    pub name: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
}

/// The dialog. `text` says what happens; `reason`, when given, is asked for (and required when
/// `reason_required`); `type_to_confirm`, when given, must be typed before "yes" enables.
/// `on_yes` gets what was typed (the server checks it again); the dialog clears it.
/// Extra fields go in as children, between the reason and the typed name.
#[component]
pub fn Confirm(
    #[prop(into)] text: Signal<String>,
    ids: ConfirmIds,
    #[prop(default = None)] reason: Option<RwSignal<String>>,
    #[prop(optional)] reason_required: bool,
    #[prop(default = None)] type_to_confirm: Option<String>,
    #[prop(into, optional)] busy: Signal<bool>,
    #[prop(optional)] wide: bool,
    yes_label: &'static str,
    on_yes: Callback<String>,
    on_no: Callback<()>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let expected = type_to_confirm.clone();
    let blocked = move || {
        expected.as_deref().is_some_and(|name| typed.read().trim() != name)
            || (reason_required && reason.is_some_and(|r| r.read().trim().is_empty()))
            || busy.get()
    };
    view! {
        <div class=if wide { "confirm confirm-wide" } else { "confirm" } role="alertdialog" aria-labelledby=format!("{}-text", ids.dialog) data-testid=ids.dialog>
            <p id=format!("{}-text", ids.dialog)>{text}</p>
            {reason.map(|reason| view! {
                <label>"Why (kept in the audit log)"<input data-testid=ids.reason prop:value=reason on:input=move |e| reason.set(event_target_value(&e))/></label>
            })}
            {children.map(|children| children())}
            {type_to_confirm.map(|name| view! {
                <label>{format!("Type {name} to confirm")}<input data-testid=ids.name autocomplete="off" prop:value=typed on:input=move |e| typed.set(event_target_value(&e))/></label>
            })}
            <div class="control-row">
                <button class="button button-danger" data-testid=ids.yes disabled=blocked
                    on:click=move |_| { on_yes.run(typed.get_untracked()); typed.set(String::new()); }>
                    {yes_label}
                </button>
                <button class="button" data-testid=ids.no on:click=move |_| on_no.run(())>"Cancel"</button>
            </div>
        </div>
    }
}
