//! The site's static files (`/pkg/…`, the favicon): served from the built site, compressed ahead
//! of time, and cached as long as their names allow.
//!
//! - `cargo leptos build --release --precompress` writes a `.br` and a `.gz` beside every file;
//!   tower-http's `ServeDir` answers with the one the browser accepts (brotli first). Compressing
//!   the 1 MB WebAssembly once at build time costs nothing per request (`docs/benchmarks.md`
//!   measures it against compressing each answer).
//! - With `hash-files` the WebAssembly, JS and CSS are named after their content
//!   (`sti_rollout.<hash>.wasm`): they never change under their name, so they are
//!   `immutable` for a year. Any other static file (the favicon, an unhashed build) is
//!   revalidated on every use: an `ETag` made of its size and time, and `304` when it still
//!   matches.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;
use tower_http::services::ServeDir;

/// What names a file after its content: cargo-leptos's hash is an MD5 in URL-safe base64
/// without padding, 22 characters, between the name and the extension.
const HASH_LENGTH: usize = 22;

/// The built site's `pkg` folder, precompressed variants preferred.
pub fn pkg_service(pkg: &Path) -> ServeDir {
    ServeDir::new(pkg).precompressed_br().precompressed_gzip()
}

/// Whether `path`'s file name carries a content hash (`name.<hash>.ext`).
pub fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let mut parts = name.rsplit('.');
    let (Some(_ext), Some(hash), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !stem.is_empty()
        && hash.len() == HASH_LENGTH
        && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Middleware for the static files: their caching headers, and `304` for a revalidation that
/// matches.
pub async fn cache(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if !super::headers::is_static(&path) {
        return next.run(request).await;
    }
    let asked = request.headers().get(header::IF_NONE_MATCH).cloned();
    let mut response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let headers = response.headers_mut();
    // the same name answers br, gzip or plain: a shared cache must keep them apart
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if is_hashed(&path) {
        headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
        return response;
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let Some(tag) = entity_tag(headers) else { return response };
    let matches = asked.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|asked| {
        asked.split(',').map(str::trim).any(|one| one == "*" || one == tag.to_str().unwrap_or_default())
    });
    headers.insert(header::ETAG, tag);
    if matches {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [header::ETAG, header::CACHE_CONTROL, header::VARY, header::LAST_MODIFIED] {
            if let Some(value) = response.headers().get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        return not_modified;
    }
    response
}

/// A tag for one representation of a file, as nginx makes it: its encoding, size and time.
fn entity_tag(headers: &HeaderMap) -> Option<HeaderValue> {
    let length = headers.get(header::CONTENT_LENGTH)?.to_str().ok()?;
    let modified = headers.get(header::LAST_MODIFIED)?.to_str().ok()?;
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    let hash = <sha2::Sha256 as sha2::Digest>::digest(format!("{encoding}:{length}:{modified}"));
    HeaderValue::from_str(&format!("\"{}\"", crate::db::hex(&hash[..8]))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_name_with_a_content_hash_counts_as_hashed() {
        assert!(is_hashed("/pkg/sti_rollout.Yq0h3Xg2m6RZrW1vdyK1QA.wasm"));
        assert!(is_hashed("/pkg/sti_rollout.a-b_c0123456789abcdefg.css"));
        assert!(!is_hashed("/pkg/sti_rollout.wasm"));
        assert!(!is_hashed("/pkg/sti_rollout_bg.wasm"));
        assert!(!is_hashed("/favicon.svg"));
        assert!(!is_hashed("/pkg/.Yq0h3Xg2m6RZrW1vdyK1QA.wasm"));
        assert!(!is_hashed("/pkg/sti_rollout.Yq0h3Xg2m6RZrW1vdyK1Q!.wasm"));
    }
}
