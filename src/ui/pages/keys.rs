//! `/keys`: the API keys applications use (admins only): listed, and revoked in place.

use crate::api::access::{list_api_keys, revoke_api_key};
use crate::domain::access::ApiKeyInfo;
use crate::ui::components::async_view::AsyncView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn KeysPage() -> impl IntoView {
    // a button and an action rather than an `ActionForm`: the form's decoder alone costs the
    // WebAssembly ~30 KB gzip
    let revoke = Action::new(|id: &i64| revoke_api_key(*id));
    let keys = Resource::new(move || revoke.version().get(), |_| list_api_keys());
    let table = move |keys: Vec<ApiKeyInfo>| view! { <KeyTable keys revoke/> };
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

#[component]
fn KeyTable(keys: Vec<ApiKeyInfo>, revoke: Action<i64, Result<(), ServerFnError>>) -> impl IntoView {
    if keys.is_empty() {
        return view! { <p class="empty" data-testid="no-keys">"No API keys yet."</p> }.into_any();
    }
    view! {
        <table class="table" data-testid="keys">
            <thead>
                <tr><th>"#"</th><th>"Environment"</th><th>"Scope"</th><th>"Key starts with"</th><th>"Created by"</th><th>"State"</th></tr>
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
                                <td>
                                    {if key.revoked {
                                        view! { <span class="run-state run-state-cancelled">"revoked"</span> }.into_any()
                                    } else {
                                        view! {
                                            <button class="button button-danger" data-testid=format!("revoke-{id}")
                                                disabled=move || revoke.pending().get()
                                                on:click=move |_| { revoke.dispatch(id); }>"Revoke"</button>
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
