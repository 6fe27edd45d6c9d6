//! `/login`: a plain form posted to `POST /login`, so it works before (and without) WebAssembly.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let failed = move || query.read().get("error").is_some_and(|e| e != "wait");
    // the throttle's delay, in whole seconds (a number, or nothing is shown)
    let wait = move || {
        let query = query.read();
        (query.get("error").as_deref() == Some("wait"))
            .then(|| query.get("retry").and_then(|r| r.parse::<u32>().ok()).unwrap_or(1))
    };
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
            {move || wait().map(|seconds| view! {
                <p class="notice notice-error" role="alert" data-testid="login-wait">
                    {format!(
                        "Too many wrong passwords: wait {seconds} second{} and try again.",
                        if seconds == 1 { "" } else { "s" }
                    )}
                </p>
            })}
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
