//! `/keys`: the API keys applications use (admins only): listed, and revoked in place.

use crate::api::access::{list_api_keys, RevokeApiKey};
use crate::domain::access::ApiKeyInfo;
use crate::ui::components::async_view::AsyncView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn KeysPage() -> impl IntoView {
    let revoke = ServerAction::<RevokeApiKey>::new();
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
fn KeyTable(keys: Vec<ApiKeyInfo>, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
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
                                            <ActionForm action=revoke>
                                                <input type="hidden" name="id" value=id/>
                                                <button type="submit" class="button button-danger">"Revoke"</button>
                                            </ActionForm>
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
