//! `/keys`: the API keys applications use (admins only): listed, and revoked in place.

use crate::api::access::{list_api_keys, revoke_api_key};
use crate::domain::access::ApiKeyInfo;
use crate::ui::components::async_view::AsyncView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn KeysPage() -> impl IntoView {
    let keys = Resource::new(|| (), |_| list_api_keys());
    let table = |keys: Vec<ApiKeyInfo>| view! { <KeyTable keys/> };
    view! {
        <Title text="API keys"/>
        <div class="page-head">
            <div>
                <h1>"API keys"</h1>
                <p class="lede">
                    "Keys let applications read their flags and projects. Create them with "
                    <code>"sti-rollout apikey create --env E --scope read|write"</code>
                    "; the key is shown once."
                </p>
            </div>
        </div>
        <AsyncView resource=keys view=table/>
    }
}

/// The one interactive part of the page: revoking a key, in place.
#[island]
fn RevokeKey(id: i64) -> impl IntoView {
    let revoke = Action::new(|id: &i64| revoke_api_key(*id));
    let failed = move || match revoke.value().get() {
        Some(Err(e)) => Some(e.to_string().trim_start_matches("error running server function: ").to_owned()),
        _ => None,
    };
    view! {
        <Show
            when=move || matches!(revoke.value().get(), Some(Ok(())))
            fallback=move || view! {
                <button class="button button-danger" data-testid=format!("revoke-{id}")
                    disabled=move || revoke.pending().get()
                    on:click=move |_| { revoke.dispatch(id); }>"Revoke"</button>
                {move || failed().map(|e| view! { <span class="notice notice-error" role="alert">{e}</span> })}
            }
        >
            <span class="run-state run-state-cancelled">"revoked"</span>
        </Show>
    }
}

/// A time in the table (UTC, to the minute), or `none` for a time there is not.
fn when(at: Option<i64>, none: &'static str) -> String {
    at.map_or_else(|| none.to_owned(), crate::domain::format::format_epoch_ms)
}

#[component]
fn KeyTable(keys: Vec<ApiKeyInfo>) -> impl IntoView {
    if keys.is_empty() {
        return view! { <p class="empty" data-testid="no-keys">"No API keys yet."</p> }.into_any();
    }
    view! {
        <table class="table" data-testid="keys">
            <thead>
                <tr><th>"#"</th><th>"Environment"</th><th>"Scope"</th><th>"Key starts with"</th><th>"Created by"</th><th>"Last used"</th><th>"Expires"</th><th>"State"</th></tr>
            </thead>
            <tbody>
                {keys
                    .into_iter()
                    .map(|key| {
                        let id = key.id;
                        view! {
                            <tr data-testid=format!("key-{id}")>
                                <td>{id}</td>
                                <td>{key.environment.as_str()}</td>
                                <td>{key.scope.as_str()}</td>
                                <td><code>{key.prefix}"…"</code></td>
                                <td>{key.created_by}</td>
                                <td data-testid=format!("key-{id}-last-used")>{when(key.last_used_at, "never")}</td>
                                <td>{when(key.expires_at, "never")}</td>
                                <td>
                                    {if key.revoked {
                                        view! { <span class="run-state run-state-cancelled">"revoked"</span> }.into_any()
                                    } else {
                                        view! {
                                            <RevokeKey id/>
                                        }
                                        .into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
