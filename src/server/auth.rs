//! Who is asking: the session guard in front of every route, login and logout, and the first
//! administrator. Nothing is reachable anonymously but the login page, static assets and
//! `/health`; every state change must come from the console's own origin.

use super::state::AppState;
use crate::db::users::{self, User};
use crate::db::{sessions, Database};
use crate::domain::access::{Role, Username};
use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "sti_session";

/// The signed-in user of a request, put there by [`guard`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: i64,
    pub username: Username,
    pub role: Role,
}

/// Paths anyone may reach.
impl CurrentUser {
    /// How the audit log and the run ledger name this user.
    pub fn actor(&self) -> String {
        format!("user:{}", self.username)
    }
}

fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/health" | "/favicon.svg" | "/robots.txt") || path.starts_with("/pkg/")
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

/// The session id the browser sent, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
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
        && session_id(req.headers()).is_some()
        && req.headers().get(crate::api::client::HEADER.0).and_then(|v| v.to_str().ok())
            != Some(crate::api::client::HEADER.1)
    {
        // a cookie-carrying server-function call not made by the console's own client
        return (StatusCode::FORBIDDEN, "server functions are called by the console only\n").into_response();
    }
    if is_public(&path) {
        return next.run(req).await;
    }
    if path == "/metrics"
        && state.metrics_token.as_deref().is_some_and(|token| bearer(req.headers()) == Some(token))
    {
        return next.run(req).await;
    }
    let user = match session_id(req.headers()) {
        Some(id) => match sessions::user(&state.control, &id).await {
            Ok(user) => user,
            Err(error) => {
                tracing::error!(%error, "cannot read sessions");
                return (StatusCode::SERVICE_UNAVAILABLE, "the control database is unavailable\n")
                    .into_response();
            }
        },
        None => None,
    };
    match user {
        Some((id, username, role)) => {
            req.extensions_mut().insert(CurrentUser { id, username, role });
            next.run(req).await
        }
        None if safe && !path.starts_with("/api/") && path != "/metrics" => {
            Redirect::to(&format!("/login?next={}", encode_path(&path))).into_response()
        }
        None => (StatusCode::UNAUTHORIZED, "sign in first\n").into_response(),
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Percent-encodes the few characters that matter in a `next=` query value.
fn encode_path(path: &str) -> String {
    path.replace('%', "%25").replace('&', "%26").replace('?', "%3F").replace('#', "%23").replace('/', "%2F")
}

/// A `next` that stays on this site, else `/`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => next,
        _ => "/",
    }
}

/// The login form, also posted by scripts.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Failed logins per user and per address in the current window.
#[derive(Default)]
pub struct LoginThrottle(Mutex<HashMap<String, (u32, Instant)>>);

const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);

impl LoginThrottle {
    /// Seconds to wait when any of `keys` failed too often.
    fn retry_after(&self, keys: &[String]) -> Option<u64> {
        let map = self.0.lock().ok()?;
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < WINDOW)
            .map(|(_, since)| (WINDOW - since.elapsed()).as_secs().max(1))
            .max()
    }

    fn fail(&self, keys: &[String]) {
        if let Ok(mut map) = self.0.lock() {
            for key in keys {
                let entry = map.entry(key.clone()).or_insert((0, Instant::now()));
                if entry.1.elapsed() >= WINDOW {
                    *entry = (0, Instant::now());
                }
                entry.0 += 1;
            }
        }
    }

    fn succeed(&self, user_key: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(user_key);
        }
    }
}

/// `POST /login`: checks the password, rotates the session, sets the cookie, goes to `next`.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let keys = [format!("user:{}", form.username), format!("addr:{}", addr.ip())];
    if let Some(seconds) = state.login_throttle.retry_after(&keys) {
        tracing::warn!(username = %form.username, address = %addr.ip(), "login throttled");
        audit_login(&state.control, "login.throttled", &form.username, addr).await;
        let mut response =
            (StatusCode::TOO_MANY_REQUESTS, "too many failed logins; try again later\n").into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    match check_password(&state.control, &form.username, &form.password).await {
        Ok(Some(user)) => {
            state.login_throttle.succeed(&keys[0]);
            match sessions::start(&state.control, &user, session_id(&headers).as_deref()).await {
                Ok(id) => {
                    tracing::info!(username = %user.username, "signed in");
                    audit_login(&state.control, "login", user.username.as_str(), addr).await;
                    let secure = if served_over_https(&headers) { "; Secure" } else { "" };
                    let cookie = format!(
                        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                        sessions::SESSION_MS / 1000
                    );
                    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
                }
                Err(error) => {
                    tracing::error!(%error, "cannot start a session");
                    (StatusCode::SERVICE_UNAVAILABLE, "the control database is unavailable\n").into_response()
                }
            }
        }
        Ok(None) => {
            state.login_throttle.fail(&keys);
            tracing::warn!(username = %form.username, address = %addr.ip(), "failed login");
            audit_login(&state.control, "login.failed", &form.username, addr).await;
            // the same answer, a little later, whether the user exists or not
            tokio::time::sleep(Duration::from_millis(250)).await;
            Redirect::to(&format!("/login?error=1&next={}", encode_path(&next))).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot check a password");
            (StatusCode::SERVICE_UNAVAILABLE, "the control database is unavailable\n").into_response()
        }
    }
}

/// Whether the browser reached the console over https (a proxy's `X-Forwarded-Proto`, or an
/// https `Origin`), so the cookie must be `Secure`.
/// Sign-ins, failed or not, in the audit log: the name tried (cut to a sane length) and the address.
async fn audit_login(control: &Database, action: &str, username: &str, addr: SocketAddr) {
    let tried: String = username.chars().take(64).collect();
    let actor = if action == "login" { format!("user:{tried}") } else { "anonymous".to_owned() };
    crate::db::audit::record_or_log(
        control,
        crate::db::audit::Entry {
            actor: &actor,
            action,
            after: Some(serde_json::json!({ "username": tried, "address": addr.ip().to_string() })),
            ..Default::default()
        },
    )
    .await;
}

fn served_over_https(headers: &HeaderMap) -> bool {
    let forwarded = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    forwarded.is_some_and(|p| p.eq_ignore_ascii_case("https"))
        || origin.is_some_and(|o| o.starts_with("https://"))
}

/// The enabled user whose password this is.
async fn check_password(
    db: &Database,
    username: &str,
    password: &str,
) -> Result<Option<User>, users::UserError> {
    let Ok(username) = Username::parse(username) else { return Ok(None) };
    let found = users::find(db, &username).await?;
    Ok(found
        .filter(|(user, hash)| !user.disabled && super::password::verify(password, hash))
        .map(|(user, _)| user))
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        if let Ok(Some((_, username, _))) = sessions::user(&state.control, &id).await {
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
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

/// With no user at all, creates `admin` with a random password, prints it once and writes it to
/// `initial-admin-password` in the data folder, readable by its owner only.
pub async fn ensure_first_admin(control: &Database, data_dir: &Path) -> Result<(), String> {
    if users::count(control).await.map_err(|e| e.to_string())? > 0 {
        return Ok(());
    }
    let password = super::password::random_password();
    let hash = super::password::hash(&password).map_err(|e| e.to_string())?;
    let admin = Username::parse("admin").map_err(|e| e.to_string())?;
    users::create(control, &admin, &hash, Role::Admin).await.map_err(|e| e.to_string())?;
    std::fs::create_dir_all(data_dir).map_err(|e| format!("data folder {}: {e}", data_dir.display()))?;
    let file = data_dir.join("initial-admin-password");
    write_private(&file, &format!("{password}\n")).map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!(
        "\n  First start: created the user 'admin' with the password\n\n      {password}\n\n  \
         (also in {}, readable only by you). Sign in and change it.\n",
        file.display()
    );
    Ok(())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn a_request_from_another_site_is_cross_origin() {
        assert!(is_cross_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!is_cross_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(is_cross_origin(&headers(&[("origin", "https://evil.example"), ("host", "console:3000")])));
        assert!(!is_cross_origin(&headers(&[("origin", "http://console:3000"), ("host", "console:3000")])));
        assert!(!is_cross_origin(&headers(&[])), "scripts send neither");
    }

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next(Some("/env/prod")), "/env/prod");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", ""] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; sti_session=abc; b=2")]);
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
        assert_eq!(session_id(&headers(&[("cookie", "a=1")])), None);
    }
}
