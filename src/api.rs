//! Server functions: each reads the shared state, (later) checks the caller's role, and calls one
//! function of the layers below. Compiled for the browser as thin HTTP clients.

pub mod access;
pub mod audit;
pub mod client;
pub mod codec;
pub mod environment;
pub mod overview;
pub mod rollout;
pub mod runbook;

/// What server functions read: the databases and the configuration they need. The server
/// provides it to every server function (it sits above this layer and builds it from its own
/// state).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ApiState {
    pub control: crate::db::Database,
    pub targets: crate::db::overview::Targets,
    /// The D-day of the config file; one set in the console or the CLI takes precedence.
    pub d_day: Option<crate::domain::calendar::Day>,
    /// Emergency contacts per environment, from the configuration.
    pub contacts: std::sync::Arc<crate::domain::environment::PerEnv<Vec<crate::domain::live::Contact>>>,
    /// How runs meet faults and stress, per environment, from the configuration.
    pub policies:
        std::sync::Arc<crate::domain::environment::PerEnv<std::sync::Arc<crate::domain::policy::Policy>>>,
    /// Each environment's webhooks as the page names them, from the configuration.
    pub webhooks:
        std::sync::Arc<crate::domain::environment::PerEnv<Vec<crate::domain::notifications::HookInfo>>>,
}

/// The server state, as every server function reads it.
#[cfg(feature = "ssr")]
pub(crate) fn app_state() -> Result<ApiState, leptos::prelude::ServerFnError> {
    leptos::prelude::use_context::<ApiState>()
        .ok_or_else(|| leptos::prelude::ServerFnError::new("the server state is missing"))
}

/// The signed-in user of the request being rendered or answered, as the session guard found
/// them: how pages know the role (they render on the server only).
#[cfg(feature = "ssr")]
pub fn signed_in() -> Option<crate::domain::access::CurrentUser> {
    leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::domain::access::CurrentUser>().cloned())
}

/// The signed-in user, if their role allows `role`; answers 403 otherwise. The session guard
/// already turned anonymous callers away with 401; this is the role check every server
/// function makes on the server.
#[cfg(feature = "ssr")]
pub(crate) async fn require(
    role: crate::domain::access::Role,
) -> Result<crate::domain::access::CurrentUser, leptos::prelude::ServerFnError> {
    use leptos::prelude::ServerFnError;
    let axum::Extension(user) = leptos_axum::extract::<axum::Extension<crate::domain::access::CurrentUser>>()
        .await
        .map_err(|_| ServerFnError::new("sign in first"))?;
    if !user.role.allows(role) {
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::FORBIDDEN);
        }
        return Err(ServerFnError::new(format!("{} may not do this", user.role.with_article())));
    }
    Ok(user)
}
