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
    /// The data folder (where the first administrator's generated password waits).
    pub data_dir: std::path::PathBuf,
    pub targets: Targets,
    /// A bearer token that may read `/metrics` without a session (`STI_METRICS_TOKEN`).
    pub metrics_token: Option<String>,
    /// The reverse proxies whose forwarded headers are believed.
    pub proxies: std::sync::Arc<super::client_address::TrustedProxies>,
    /// `[security]` of the configuration: session idle timeout, the plain-http switch.
    pub security: std::sync::Arc<super::config::Security>,
    /// Event streams open per session, so that one session cannot hold hundreds.
    pub streams: std::sync::Arc<super::events::StreamCount>,
    /// The D-day of the config file; one set in the console or the CLI takes precedence.
    pub d_day: Option<crate::domain::calendar::Day>,
    /// How long the applications' API requests take (`/metrics`).
    pub http_metrics: std::sync::Arc<super::http_metrics::HttpMetrics>,
    /// How runs meet faults and stress, per environment, from the configuration.
    pub policies:
        std::sync::Arc<crate::domain::environment::PerEnv<std::sync::Arc<crate::domain::policy::Policy>>>,
    /// Emergency contacts per environment, from the configuration.
    pub contacts: std::sync::Arc<crate::domain::environment::PerEnv<Vec<crate::domain::live::Contact>>>,
    /// Each environment's webhooks, from the configuration.
    pub webhooks: super::webhooks::Hooks,
}

impl AppState {
    /// What the server functions read (`api::ApiState`), provided to each of them.
    pub fn api(&self) -> crate::api::ApiState {
        crate::api::ApiState {
            control: self.control.clone(),
            targets: self.targets.clone(),
            d_day: self.d_day,
            contacts: self.contacts.clone(),
            policies: self.policies.clone(),
            webhooks: std::sync::Arc::new(
                self.webhooks.map(|_, hooks| hooks.iter().map(|h| h.info()).collect()),
            ),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
