//! `/runbook`: the rollout playbook, as the waiting box and the environment pages link to it.

use crate::api::runbook::runbook;
use crate::ui::components::async_view::AsyncView;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn RunbookPage() -> impl IntoView {
    let text = Resource::new(|| (), |_| runbook());
    view! {
        <Title text="Runbook"/>
        <p class="crumbs"><a href="/">"Overview"</a>" / runbook"</p>
        <AsyncView resource=text view=|html: String| view! {
            // the playbook built into the binary, rendered on the server: no user text in it
            <article class="card runbook" data-testid="runbook" inner_html=html></article>
        }/>
    }
}
