//! The line an action leaves on a page: what happened, in words, until dismissed.

use leptos::prelude::*;

/// A message after an action: success or failure, in words.
pub type Flash = RwSignal<Option<(bool, String)>>;

/// The server's sentence of a failed call, without the framework's prefix.
pub fn sentence(error: &ServerFnError) -> String {
    error.to_string().trim_start_matches("error running server function: ").to_owned()
}

/// Shows `result` in `flash`: `ok` of the value, or the server's sentence.
pub fn say<T>(flash: Flash, result: &Result<T, ServerFnError>, ok: impl FnOnce(&T) -> String) {
    flash.set(Some(match result {
        Ok(value) => (true, ok(value)),
        Err(error) => (false, sentence(error)),
    }));
}

/// Says in `flash` when a dispatch of `action` succeeded: a refusal is said beside the control
/// that caused it, by its caller, not at the top of the page.
pub fn report_success<I, T>(
    action: Action<I, Result<T, ServerFnError>>,
    flash: Flash,
    ok: impl Fn(&T) -> String + Send + Sync + 'static,
) where
    I: Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    Effect::new(move |_| {
        action.value().with(|value| {
            if let Some(Ok(value)) = value {
                flash.set(Some((true, ok(value))));
            }
        });
    });
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
    report_success(action, flash, ok);
    report_failure(action, flash);
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

/// Clears `flash` once its context has moved on: at the second change of `context` after the
/// flash was set (the first is the one its own action causes — a run started, a run stopped), so
/// "Run #2 started." does not stand above the rollback that ended after it.
pub fn expire_on<T>(flash: Flash, context: Memo<T>)
where
    T: PartialEq + Clone + Send + Sync + 'static,
{
    let changes = RwSignal::new(0_u32);
    Effect::new(move |_| {
        flash.track();
        changes.set(0);
    });
    Effect::new(move |previous: Option<T>| {
        let now = context.get();
        if previous.is_some_and(|before| before != now) {
            let seen = changes.get_untracked() + 1;
            if seen >= 2 && flash.read_untracked().is_some() {
                flash.set(None);
            } else {
                changes.set(seen);
            }
        }
        now
    });
}
