//! `/account`: the signed-in user changes their own password, which signs out their other
//! sessions. A plain form posted to `POST /account/password`, so it works without WebAssembly.
//! A user whose password was generated (the first administrator) is sent here first.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// What the last attempt said, from the query the form's answer redirected to: a fixed
/// sentence per code, never text from the request.
fn problem(code: &str) -> String {
    use crate::domain::access::CredentialError;
    match code {
        "wrong" => "The current password is not right.".to_owned(),
        "differ" => "The two new passwords differ.".to_owned(),
        "same" => "The new password must differ from the current one.".to_owned(),
        "short" => format!("{}.", CredentialError::PasswordTooShort),
        "long" => format!("{}.", CredentialError::PasswordTooLong),
        "wait" => "Too many wrong current passwords; wait a moment and try again.".to_owned(),
        _ => "The password could not be changed just now; try again.".to_owned(),
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let query = use_query_map();
    let first = move || query.read().get("first").is_some();
    let error = move || query.read().get("error").map(|code| problem(&code));
    let changed = move || query.read().get("changed");
    view! {
        <Title text="Your password"/>
        <section class="login">
            <h1>{move || if first() { "Choose a new password" } else { "Your password" }}</h1>
            <Show when=first>
                <p class="lede" data-testid="must-change">
                    "You signed in with a generated password. Choose your own before you go on; the file that held the generated one is then deleted."
                </p>
            </Show>
            {move || changed().map(|ended| view! {
                <p class="notice" role="status" data-testid="password-changed">
                    {format!("Password changed. Other sessions signed out: {ended}.")}
                    " "<a href="/">"Go to the overview"</a>
                </p>
            })}
            {move || error().map(|e| view! { <p class="notice notice-error" role="alert" data-testid="password-error">{e}</p> })}
            <form method="post" action="/account/password" class="login-form">
                <label>
                    <span>"Current password"</span>
                    <input type="password" name="current" autocomplete="current-password" required/>
                </label>
                <label>
                    <span>"New password"</span>
                    <input type="password" name="new" autocomplete="new-password" required minlength=crate::domain::access::MIN_PASSWORD_CHARS.to_string()/>
                </label>
                <label>
                    <span>"New password again"</span>
                    <input type="password" name="repeat" autocomplete="new-password" required minlength=crate::domain::access::MIN_PASSWORD_CHARS.to_string()/>
                </label>
                <button class="button" type="submit" data-testid="change-password">"Change password"</button>
            </form>
            <p class="lede">"Changing it signs you out everywhere else."</p>
        </section>
    }
}
