//! The security headers every answer carries, in one layer outside everything else.
//!
//! - `Content-Security-Policy`: scripts only from this origin, and the one inline script Leptos
//!   writes to hydrate the islands, which carries this request's nonce (a new random one per
//!   request: [`Nonce`] goes into the request, the page shell reads it from there); WebAssembly
//!   may be compiled; styles only from the stylesheet (no `style` attributes); no framing.
//! - `X-Frame-Options: DENY` for browsers that predate `frame-ancestors`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`.
//! - `Cache-Control: no-store` on everything but the static files: pages, exports and API answers
//!   hold what only a signed-in user may see, and must not stay in a shared or browser cache.
//! - `Strict-Transport-Security` when a trusted proxy says the browser came over https.

use super::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

/// This request's script nonce, put into the request for the page shell.
#[derive(Clone, Debug)]
pub struct Nonce(pub String);

/// The policy for a page whose inline script carries `nonce`.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Whether `path` is one of the site's static files: cacheable, and public (`auth::is_public`).
pub(crate) fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/") || matches!(path, "/favicon.svg" | "/robots.txt")
}

pub async fn security_headers(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let nonce = crate::db::random_hex(16);
    let https = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| state.proxies.forwarded_https(peer.ip(), request.headers()));
    let cacheable = is_static(request.uri().path());
    request.extensions_mut().insert(Nonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !cacheable {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    response
}
