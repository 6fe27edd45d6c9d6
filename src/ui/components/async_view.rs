//! One component that renders every server-fetched view: loading, error, or the data.

use leptos::either::Either;
use leptos::prelude::*;
use serde::{de::DeserializeOwned, Serialize};

/// Renders `resource`: a loading line first, a notice if it failed, else `view` of its value.
/// While a refetch runs the previous view stays on screen and `pending` is true.
#[component]
pub fn AsyncView<T, V, F>(
    resource: Resource<Result<T, ServerFnError>>,
    view: F,
    #[prop(optional)] pending: Option<RwSignal<bool>>,
) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    let pending = pending.unwrap_or_else(|| RwSignal::new(false));
    view! {
        <Transition
            fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }
            set_pending=pending.write_only()
        >
            {move || {
                let view = view.clone();
                resource
                    .get()
                    .map(move |result| match result {
                        Ok(value) => Either::Left(view(value)),
                        Err(error) => Either::Right(view! { <ErrorNotice message=error.to_string()/> }),
                    })
            }}
        </Transition>
    }
}

/// A failure the user should see, in words.
#[component]
pub fn ErrorNotice(message: String) -> impl IntoView {
    view! {
        <div class="notice notice-error" role="alert">
            <strong>"Could not load this view. "</strong>
            <span>{message}</span>
        </div>
    }
}
