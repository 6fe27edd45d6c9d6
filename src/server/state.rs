//! The state every handler and server function shares.

use crate::db::overview::Targets;
use crate::db::Database;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

/// Given to the router and provided as context to every server function.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub control: Database,
    pub targets: Targets,
    /// A bearer token that may read `/metrics` without a session (`STI_METRICS_TOKEN`).
    pub metrics_token: Option<String>,
    pub login_throttle: std::sync::Arc<super::auth::LoginThrottle>,
    /// The D-day of the config file; one set in the console or the CLI takes precedence.
    pub d_day: Option<crate::domain::timeline::Day>,
    /// How long the applications' API requests take (`/metrics`).
    pub http_metrics: std::sync::Arc<super::http_metrics::HttpMetrics>,
    /// Emergency contacts per environment, from the configuration.
    /// How runs meet faults and stress, per environment, from the configuration.
    pub policies: std::sync::Arc<
        std::collections::BTreeMap<
            crate::domain::environment::Environment,
            std::sync::Arc<crate::domain::policy::Policy>,
        >,
    >,
    pub contacts: std::sync::Arc<
        std::collections::BTreeMap<
            crate::domain::environment::Environment,
            Vec<crate::domain::live::Contact>,
        >,
    >,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
