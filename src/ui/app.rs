//! The HTML shell, the app component and its routes.

use crate::api::access::whoami;
use crate::domain::access::Role;
use crate::ui::pages::{
    account::AccountPage, audit::AuditLogPage, environment::EnvironmentPage, keys::KeysPage,
    login::LoginPage, not_found::NotFound, overview::OverviewPage, runbook::RunbookPage,
    signoffs::SignoffsPage,
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{ParamSegment, SsrMode, StaticSegment};

/// The document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The console: a top bar and the routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Title formatter=|page: String| format!("{page} · STI Rollout Console")/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"STI"</span>
                    <span class="brand-name">"Rollout Console"</span>
                </A>
                <span class="topbar-note">"projects → school_projects · self_study_projects"</span>
                <SignOut/>
            </header>
            <main class="page">
                <Routes fallback=NotFound>
                    // async: the whole page is rendered before it is sent, so it reads without JavaScript
                    <Route path=StaticSegment("") view=OverviewPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("login") view=LoginPage/>
                    <Route path=StaticSegment("keys") view=KeysPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("account") view=AccountPage/>
                    <Route path=StaticSegment("audit") view=AuditLogPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("runbook") view=RunbookPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("signoffs") view=SignoffsPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("env"), ParamSegment("env")) view=EnvironmentPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// Who is signed in, the admin's links, and a plain sign-out form (it works without
/// WebAssembly); nothing of it on the login page.
#[component]
fn SignOut() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let me = Resource::new(
        move || location.pathname.get() == "/login",
        |on_login| async move {
            if on_login {
                None
            } else {
                whoami().await.ok()
            }
        },
    );
    view! {
        <Show when=move || location.pathname.get() != "/login">
            <nav class="usernav">
                <Suspense>
                    {move || me.get().flatten().map(|me| view! {
                        <A href="/signoffs" attr:class="navlink" attr:data-testid="nav-signoffs">"My sign-offs"</A>
                        <A href="/audit" attr:class="navlink" attr:data-testid="nav-audit">"Audit log"</A>
                        <A href="/runbook" attr:class="navlink" attr:data-testid="nav-runbook">"Runbook"</A>
                        {(me.role == Role::Admin).then(|| view! { <A href="/keys" attr:class="navlink" attr:data-testid="nav-keys">"API keys"</A> })}
                        <A href="/account" attr:class="whoami" attr:data-testid="whoami" attr:title="Your password">{format!("{} · {}", me.username, me.role)}</A>
                    })}
                </Suspense>
                <form method="post" action="/logout" class="signout">
                    <button type="submit" class="link-button" data-testid="sign-out">"Sign out"</button>
                </form>
            </nav>
        </Show>
    }
}
