//! Every plain HTTP route (what is neither a page nor a server function), with who may call it.
//! The router is built from this list and the access test walks it, so a new endpoint cannot
//! escape the checks.

use super::state::AppState;
use super::{ofrep, projects};
use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};

/// Who may call a route; the session guard (`auth::guard`) enforces it, reading it from this
/// table ([`access_of`]), except for `ApiKey` routes, which the router keeps out of the guard's
/// reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Anyone,
    /// A signed-in user of any role; anonymous callers are sent to sign in.
    SignedIn,
    /// A signed-in user, or a scraper with the metrics token.
    SignedInOrMetricsToken,
    /// An application with an API key of an environment (`Authorization: Bearer`); a session
    /// is not enough. The handler checks the key and its scope.
    ApiKey,
}

/// One plain route.
pub struct PlainRoute {
    pub path: &'static str,
    pub method: Method,
    pub access: Access,
    pub handler: MethodRouter<AppState>,
}

fn route(path: &'static str, method: Method, access: Access, handler: MethodRouter<AppState>) -> PlainRoute {
    PlainRoute { path, method, access, handler }
}

/// Who may call the plain route that answers `path` (any method), if one does: what the session
/// guard reads, so that this table is the only place a route's access is written.
pub fn access_of(path: &str) -> Option<Access> {
    static TABLE: std::sync::OnceLock<Vec<(&'static str, Access)>> = std::sync::OnceLock::new();
    TABLE
        .get_or_init(|| plain_routes().into_iter().map(|r| (r.path, r.access)).collect())
        .iter()
        .find(|(pattern, _)| route_matches(pattern, path))
        .map(|(_, access)| *access)
}

/// Whether `path` is one `route` (`/env/{env}`, `/env/:env`) answers.
pub fn route_matches(route: &str, path: &str) -> bool {
    let mut route = route.split('/');
    let mut path = path.split('/');
    loop {
        match (route.next(), path.next()) {
            (None, None) => return true,
            (Some(r), _) if r.starts_with('*') || r.starts_with("{*") => return true,
            (Some(r), Some(p)) if r == p => {}
            (Some(r), Some(p)) if (r.starts_with(':') || r.starts_with('{')) && !p.is_empty() => {}
            _ => return false,
        }
    }
}

/// The plain routes, in the order the router gets them.
pub fn plain_routes() -> Vec<PlainRoute> {
    use Access::*;
    vec![
        route("/health", Method::GET, Anyone, get(super::health::health)),
        route("/metrics", Method::GET, SignedInOrMetricsToken, get(super::metrics::metrics)),
        route("/login", Method::POST, Anyone, post(super::auth::login)),
        route("/logout", Method::POST, Anyone, post(super::auth::logout)),
        route("/account/password", Method::POST, SignedIn, post(super::account::change_password)),
        route("/events", Method::GET, SignedIn, get(super::events::overview_events)),
        route("/events/{env}", Method::GET, SignedIn, get(super::events::events)),
        route("/env/{env}/dead-letters.csv", Method::GET, SignedIn, get(super::events::dead_letters_csv)),
        route("/env/{env}/runs/{run}/ledger.csv", Method::GET, SignedIn, get(super::events::ledger_csv)),
        route("/audit.csv", Method::GET, SignedIn, get(super::events::audit_csv)),
        route("/audit.json", Method::GET, SignedIn, get(super::events::audit_json)),
        route("/api/projects", Method::GET, ApiKey, get(projects::list_projects)),
        route("/api/projects", Method::POST, ApiKey, post(projects::create_project)),
        route("/api/projects/{id}", Method::GET, ApiKey, get(projects::get_project)),
        route("/api/projects/{id}", Method::PUT, ApiKey, put(projects::replace_project)),
        route("/api/projects/{id}", Method::DELETE, ApiKey, delete(projects::delete_project)),
        route(
            "/ofrep/v1/evaluate/flags/{key}",
            Method::POST,
            ApiKey,
            post(ofrep::evaluate_flag).options(ofrep::preflight),
        ),
        route(
            "/ofrep/v1/evaluate/flags",
            Method::POST,
            ApiKey,
            post(ofrep::evaluate_flags).options(ofrep::preflight),
        ),
    ]
}
