//! The environment's next step, on top of its page: one line saying what to do, wait for or
//! what is in the way, and for operators the one primary button that does it.

use crate::domain::live::LiveView;
use crate::domain::next_step::{of_live, Action};
use leptos::prelude::*;

/// An action the next step's button asked for; the card that owns the action carries it out
/// (the controls start or resume a run, the verification card verifies, the flag card asks to
/// turn the flag on) and clears it.
pub(super) type Asked = RwSignal<Option<Action>>;

/// Takes `action` off `asked` when it is there: whether the caller should do it now.
pub(super) fn take(asked: Asked, action: Action) -> bool {
    if asked.get() == Some(action) {
        asked.set(None);
        return true;
    }
    false
}

#[component]
pub(super) fn NextStepCard(live: RwSignal<LiveView>, operator: bool, asked: Asked) -> impl IntoView {
    let next = Memo::new(move |_| of_live(&live.read()));
    view! {
        <section class=move || format!("card next-step next-step-{}", next.read().kind.as_str()) aria-label="Next step" data-testid="next-step">
            <p class="next-step-line" data-testid="next-step-line">{move || next.read().sentence.clone()}</p>
            {move || next.read().action.filter(|_| operator).map(|action| match action {
                // the checklist is signed item by item, further down
                Action::SignChecklist => view! {
                    <a class="button button-primary" href="#checklist-heading" data-testid="next-action">{action.label()}</a>
                }.into_any(),
                _ => view! {
                    <button class="button button-primary" data-testid="next-action" on:click=move |_| asked.set(Some(action))>
                        {action.label()}
                    </button>
                }.into_any(),
            })}
        </section>
    }
}
