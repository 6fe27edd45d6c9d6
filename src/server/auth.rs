//! Who is asking: the session guard in front of every route, login and logout (the first
//! administrator and the own-password change are in `account.rs`). Nothing is reachable
//! anonymously but the login page, static assets and the route table's `Access::Anyone`
//! routes; every state change must come from the console's own origin.

use super::routes::{self, Access};
use super::state::AppState;
use crate::db::login_throttle::{self, Reservation};
use crate::db::users;
use crate::db::{sessions, Database};
pub use crate::domain::access::CurrentUser;
use crate::domain::access::Username;
use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;

/// The session cookie's name: `__Host-` makes browsers keep it only when it is `Secure`, set by
/// this host itself for the whole site, so neither another site on the domain nor a man in the
/// middle on plain http can plant one.
pub const COOKIE: &str = "__Host-sti_session";
/// Its name under `plain_http = true`, where it cannot be `Secure`.
pub const PLAIN_COOKIE: &str = "sti_session";

/// The session cookie's name under this configuration.
pub fn cookie_name(security: &super::config::Security) -> &'static str {
    if security.plain_http {
        PLAIN_COOKIE
    } else {
        COOKIE
    }
}

/// Whether anyone may reach `path`: the sign-in page, the site's static files, and the plain
/// routes the route table gives `Access::Anyone`. Decided on the path as the file server and the
/// router will read it: percent-decoded, with `.` and `..` segments resolved
/// (`/pkg/%2e%2e/env/dev` is `/env/dev`, not a static file). A path that does not decode is
/// not public.
fn is_public(path: &str) -> bool {
    let Some(path) = normalise(path) else { return false };
    path == "/login" || super::headers::is_static(&path) || routes::access_of(&path) == Some(Access::Anyone)
}

/// Whether `path` is a route a scraper may read with the metrics token instead of a session.
fn takes_metrics_token(path: &str) -> bool {
    routes::access_of(path) == Some(Access::SignedInOrMetricsToken)
}

/// `path` percent-decoded, its dot segments resolved; `None` when it is not UTF-8.
fn normalise(path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8().ok()?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    Some(format!("/{}", segments.join("/")))
}

/// Whether an unsafe request comes from another site: `Sec-Fetch-Site` when the browser sends
/// it, else `Origin` against `Host`. Requests with neither (scripts) pass; they still need a
/// session.
fn is_cross_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            Some(origin_host) != host.to_str().ok()
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// The session id the browser sent, if any, in the cookie named `name`.
pub fn session_id(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_owned())
}

/// In front of every route but the applications' (`Access::ApiKey`, whose handlers check the
/// key): rejects cross-origin state changes, lets public paths through, and requires a live
/// session (or the metrics token on `/metrics`) for everything else.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && is_cross_origin(req.headers()) {
        return (StatusCode::FORBIDDEN, "cross-origin requests may not change anything\n").into_response();
    }
    let path = req.uri().path().to_owned();
    if !safe
        && path.starts_with("/api/")
        && session_id(req.headers(), cookie_name(&state.security)).is_some()
        && req.headers().get(crate::api::client::HEADER.0).and_then(|v| v.to_str().ok())
            != Some(crate::api::client::HEADER.1)
    {
        // a cookie-carrying server-function call not made by the console's own client
        return (StatusCode::FORBIDDEN, "server functions are called by the console only\n").into_response();
    }
    if is_public(&path) {
        return next.run(req).await;
    }
    if takes_metrics_token(&path)
        && state.metrics_token.as_deref().is_some_and(|token| same_secret(bearer(req.headers()), token))
    {
        return next.run(req).await;
    }
    let session = session_id(req.headers(), cookie_name(&state.security));
    let user = match &session {
        Some(id) => match sessions::user(&state.control, id).await {
            Ok(user) => user,
            Err(error) => return unavailable("cannot read sessions", &error),
        },
        None => None,
    };
    match (user, session) {
        (Some((_, _, _, true)), Some(_)) if !allowed_before_changing_password(&path) => {
            if safe && !path.starts_with("/api/") {
                Redirect::to("/account?first=1").into_response()
            } else {
                (StatusCode::FORBIDDEN, "choose your own password first: /account\n").into_response()
            }
        }
        (Some((id, username, role, must_change_password)), Some(session)) => {
            if let Err(error) = sessions::touch(&state.control, &session).await {
                tracing::warn!(%error, "cannot note a session's request");
            }
            req.extensions_mut().insert(CurrentUser { id, username, role, must_change_password });
            next.run(req).await
        }
        _ if safe && !path.starts_with("/api/") && !takes_metrics_token(&path) => {
            Redirect::to(&format!("/login?next={}", encode_path(&path))).into_response()
        }
        _ => (StatusCode::UNAUTHORIZED, "sign in first\n").into_response(),
    }
}

/// Whether `given` is `secret`, compared in constant time (of their SHA-256, so that not even
/// the length shows).
fn same_secret(given: Option<&str>, secret: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = given else { return false };
    let (given, secret) = (crate::db::api_keys::key_hash(given), crate::db::api_keys::key_hash(secret));
    given.as_bytes().ct_eq(secret.as_bytes()).into()
}

/// What a user who must change their password may reach: the page that changes it, what that
/// page reads, and signing out.
fn allowed_before_changing_password(path: &str) -> bool {
    matches!(path, "/account" | "/account/password" | "/logout") || path.starts_with("/api/whoami")
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Percent-encodes the few characters that matter in a `next=` query value.
fn encode_path(path: &str) -> String {
    path.replace('%', "%25").replace('&', "%26").replace('?', "%3F").replace('#', "%23").replace('/', "%2F")
}

/// Where to go after signing in: `next` when it is one of the console's own pages (a path,
/// optionally with a query, without control characters or white space), else `/`.
fn safe_next(next: Option<&str>) -> &str {
    let Some(next) = next else { return "/" };
    let path = next.split_once('?').map_or(next, |(path, _)| path);
    let clean = next.starts_with('/')
        && !next.starts_with("//")
        && !next.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#');
    if clean && super::startup::page_routes().iter().any(|route| routes::route_matches(route.path(), path)) {
        next
    } else {
        "/"
    }
}

/// The login form, also posted by scripts.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// A 503 for the control database (see [`super::unavailable`]).
fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Response {
    super::unavailable(what, "the control database", error)
}

/// `POST /login`: reserves the attempt with the throttle, checks the password (against a dummy
/// hash for a name that is no enabled user), rotates the session, sets the cookie, goes to `next`.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let address = state.proxies.client(peer.ip(), &headers).to_string();
    // only a name that could be a user's reaches the log and the audit trail: anything else
    // (a password typed into the wrong field, forged log lines) is "not a user name"
    let name = Username::parse(&form.username).ok();
    let shown = name.as_ref().map_or(NOT_A_NAME, Username::as_str);
    match login_throttle::reserve(&state.control, shown, &address).await {
        Ok(Reservation::Check) => {}
        Ok(Reservation::Refused { retry_after_s, first, by_address }) => {
            tracing::warn!(username = shown, address, retry_after_s, by_address, "login throttled");
            if first {
                audit_login(&state.control, "login.throttled", shown, &address).await;
            }
            if wants_html(&headers) {
                // a browser's form post: back to the form, which says how long to wait
                let to = format!("/login?error=wait&retry={retry_after_s}&next={}", encode_path(&next));
                return Redirect::to(&to).into_response();
            }
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, "too many failed logins; try again later\n").into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        Err(error) => return unavailable("cannot reserve a sign-in attempt", &error),
    }
    let found = match &name {
        Some(name) => match users::find(&state.control, name).await {
            Ok(found) => found.filter(|(user, _)| !user.disabled),
            Err(error) => return unavailable("cannot check a password", &error),
        },
        None => None,
    };
    let (user, stored) = found.map_or((None, None), |(user, hash)| (Some(user), Some(hash)));
    let matches = super::password::check(form.password, stored).await;
    match user.filter(|_| matches) {
        Some(user) => {
            if let Err(error) = login_throttle::succeeded(&state.control, shown, &address).await {
                tracing::warn!(%error, "cannot clear the sign-in throttle");
            }
            let idle_ms = i64::from(state.security.idle_timeout_minutes) * 60_000;
            match sessions::start(
                &state.control,
                &user,
                session_id(&headers, cookie_name(&state.security)).as_deref(),
                idle_ms,
            )
            .await
            {
                Ok(id) => {
                    tracing::info!(username = %user.username, "signed in");
                    audit_login(&state.control, "login", user.username.as_str(), &address).await;
                    let cookie = session_cookie(&state, &id, "");
                    let to = if user.must_change_password { "/account?first=1" } else { next.as_str() };
                    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
                }
                Err(error) => unavailable("cannot start a session", &error),
            }
        }
        None => {
            let refused = match login_throttle::failed(&state.control, shown).await {
                Ok((_, refused)) => refused,
                Err(error) => {
                    tracing::warn!(%error, "cannot count a failed sign-in");
                    0
                }
            };
            tracing::warn!(username = shown, address, refused, "failed login");
            audit_login_refused(&state.control, "login.failed", shown, &address, refused).await;
            Redirect::to(&format!("/login?error=1&next={}", encode_path(&next))).into_response()
        }
    }
}

/// Whether the request is a browser's navigation (it accepts HTML), not a script's.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// What the log and the audit trail say for a tried name that is no user name at all.
const NOT_A_NAME: &str = "(not a user name)";

/// The session cookie for `id`, with `extra` attributes: a browser session's (no `Max-Age`: it
/// goes when the browser closes; the server ends it after 12 hours, or sooner when idle).
fn session_cookie(state: &AppState, id: &str, extra: &str) -> String {
    let name = cookie_name(&state.security);
    let secure = if state.security.plain_http { "" } else { "; Secure" };
    format!("{name}={id}; Path=/; HttpOnly; SameSite=Strict{extra}{secure}")
}

/// Sign-ins, failed or not, in the audit log: the name tried (one that parses as a user name)
/// and the client's address.
async fn audit_login(control: &Database, action: &str, username: &str, address: &str) {
    audit_login_refused(control, action, username, address, 0).await;
}

/// As [`audit_login`], with how many attempts the throttle refused so far in its window (only
/// the first of them has an entry of its own).
async fn audit_login_refused(control: &Database, action: &str, username: &str, address: &str, refused: i64) {
    let actor = if action == "login" { format!("user:{username}") } else { "anonymous".to_owned() };
    let mut after = serde_json::json!({ "username": username, "address": address });
    if refused > 0 {
        after["refused_so_far"] = serde_json::json!(refused);
    }
    crate::db::audit::record_or_log(
        control,
        crate::db::audit::Entry { actor: &actor, action, after: Some(after), ..Default::default() },
    )
    .await;
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers, cookie_name(&state.security)) {
        if let Ok(Some((_, username, _, _))) = sessions::user(&state.control, &id).await {
            crate::db::audit::record_or_log(
                &state.control,
                crate::db::audit::Entry {
                    actor: &format!("user:{username}"),
                    action: "logout",
                    ..Default::default()
                },
            )
            .await;
        }
        if let Err(error) = sessions::end(&state.control, &id).await {
            tracing::warn!(%error, "cannot end a session");
        }
    }
    let cookie = session_cookie(&state, "", "; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests;
