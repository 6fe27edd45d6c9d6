//! The line an action leaves on a page: what happened, in words, until dismissed.

use leptos::prelude::*;

/// A message after an action: success or failure, in words.
pub type Flash = RwSignal<Option<(bool, String)>>;

/// Shows `result` in `flash`: `ok` of the value, or the server's sentence.
pub fn say<T>(flash: Flash, result: &Result<T, ServerFnError>, ok: impl FnOnce(&T) -> String) {
    flash.set(Some(match result {
        Ok(value) => (true, ok(value)),
        Err(error) => {
            (false, error.to_string().trim_start_matches("error running server function: ").to_owned())
        }
    }));
}

/// Says in `flash` how each dispatch of `action` ended: `ok` of its value, or the error.
pub fn report<I, T>(
    action: Action<I, Result<T, ServerFnError>>,
    flash: Flash,
    ok: impl Fn(&T) -> String + Send + Sync + 'static,
) where
    I: Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    Effect::new(move |_| {
        action.value().with(|value| {
            if let Some(result) = value {
                say(flash, result, &ok);
            }
        });
    });
}

/// The flash line with its dismiss button.
#[component]
pub fn FlashLine(flash: Flash) -> impl IntoView {
    move || {
        flash.get().map(|(ok, message)| {
            view! {
                <div class=if ok { "notice notice-ok" } else { "notice notice-error" } role="status" data-testid="flash">
                    <span>{message}</span>
                    <button class="link-button" on:click=move |_| flash.set(None) aria-label="Dismiss">"×"</button>
                </div>
            }
        })
    }
}

/// Says in `flash` when a dispatch of `action` failed; its value is shown elsewhere.
pub fn report_failure<I, T>(action: Action<I, Result<T, ServerFnError>>, flash: Flash)
where
    I: Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    Effect::new(move |_| {
        action.value().with(|value| {
            if let Some(Err(error)) = value {
                say::<()>(flash, &Err(error.clone()), |_| String::new());
            }
        });
    });
}
