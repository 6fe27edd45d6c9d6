//! An open emergency stop, shown first on the overview and on its environment's page until an
//! operator acknowledges it: who stopped, when and why, what the stop did and did not do, and
//! the way back.

use crate::api::environment::acknowledge_stop;
use crate::domain::incident::Incident;
use leptos::prelude::*;

#[component]
pub fn IncidentNotice(
    incident: Incident,
    operator: bool,
    /// Called once the acknowledgement is recorded (the page re-reads what it shows).
    #[prop(into)]
    on_acknowledged: Callback<()>,
) -> impl IntoView {
    let env = incident.environment;
    let asking = RwSignal::new(false);
    let note = RwSignal::new(String::new());
    let acknowledge = Action::new(move |note: &String| acknowledge_stop(env.to_string(), note.clone()));
    Effect::new(move |_| {
        if let Some(Ok(_)) = acknowledge.value().get() {
            asking.set(false);
            on_acknowledged.run(());
        }
    });
    view! {
        <section class="notice notice-error incident" role="alert" data-testid=format!("incident-{env}")>
            <p class="incident-headline"><strong>{incident.headline()}</strong></p>
            <p>{incident.did()}" "{incident.did_not()}</p>
            <p>{incident.way_back()}</p>
            {operator.then(|| view! {
                <div class="incident-acknowledge">
                    <button class="button" data-testid=format!("acknowledge-{env}") on:click=move |_| asking.update(|a| *a = !*a)>
                        "Acknowledge…"
                    </button>
                    <Show when=move || asking.get()>
                        <div class="control-row">
                            <label>"Note (optional, kept in the audit log)"
                                <input data-testid=format!("acknowledge-note-{env}") prop:value=note on:input=move |e| note.set(event_target_value(&e))/>
                            </label>
                            <button class="button button-primary" data-testid=format!("acknowledge-yes-{env}") disabled=move || acknowledge.pending().get()
                                on:click=move |_| { acknowledge.dispatch(note.get_untracked()); }>
                                "I have read it: acknowledge"
                            </button>
                        </div>
                    </Show>
                    // a refusal is said here, beside the button that caused it
                    {move || acknowledge.value().get().and_then(Result::err).map(|e| view! {
                        <p class="field-error" role="alert">{crate::ui::components::flash::sentence(&e)}</p>
                    })}
                </div>
            })}
        </section>
    }
}
