//! `/login`: a plain form posted to `POST /login`, so it works before (and without) WebAssembly.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let failed = move || query.read().get("error").is_some();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_owned());
    view! {
        <Title text="Sign in"/>
        <section class="login">
            <h1>"Sign in"</h1>
            <p class="lede">"The rollout console is for the people who run, approve and watch the rollout."</p>
            <Show when=failed>
                <p class="notice notice-error" role="alert" data-testid="login-error">
                    "Wrong user name or password."
                </p>
            </Show>
            <form method="post" action="/login" class="login-form">
                <label>
                    <span>"User name"</span>
                    <input name="username" autocomplete="username" required autofocus/>
                </label>
                <label>
                    <span>"Password"</span>
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <input type="hidden" name="next" value=next/>
                <button class="button" type="submit">"Sign in"</button>
            </form>
        </section>
    }
}
