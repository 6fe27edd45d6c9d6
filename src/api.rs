//! Server functions: each reads the shared state, (later) checks the caller's role, and calls one
//! function of the layers below. Compiled for the browser as thin HTTP clients.

pub mod access;
pub mod audit;
pub mod client;
pub mod codec;
pub mod environment;
pub mod overview;
pub mod rollout;

/// The server state, as every server function reads it.
#[cfg(feature = "ssr")]
pub(crate) fn app_state() -> Result<crate::server::state::AppState, leptos::prelude::ServerFnError> {
    leptos::prelude::use_context::<crate::server::state::AppState>()
        .ok_or_else(|| leptos::prelude::ServerFnError::new("the server state is missing"))
}

/// The signed-in user, if their role allows `role`; answers 403 otherwise. The session guard
/// already turned anonymous callers away with 401; this is the role check every server
/// function makes on the server.
#[cfg(feature = "ssr")]
pub(crate) async fn require(
    role: crate::domain::access::Role,
) -> Result<crate::server::auth::CurrentUser, leptos::prelude::ServerFnError> {
    use leptos::prelude::ServerFnError;
    let axum::Extension(user) = leptos_axum::extract::<axum::Extension<crate::server::auth::CurrentUser>>()
        .await
        .map_err(|_| ServerFnError::new("sign in first"))?;
    if !user.role.allows(role) {
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::FORBIDDEN);
        }
        return Err(ServerFnError::new(format!("a {} may not do this", user.role)));
    }
    Ok(user)
}
