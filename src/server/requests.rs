//! What every request goes through before the console's own layers, all of it tower-http's:
//!
//! - **A request id** (`x-request-id`): the caller's, or a new random one; it is in the log
//!   line of everything the request logs, and in the answer, so a user quoting it finds the lines.
//! - **A time limit**: a request whose answer has not started after [`REQUEST_TIMEOUT`] gets
//!   `408` and its work is dropped. The event streams start their answer at once and are not
//!   limited; a backfill runs beside the request that started it.
//! - **A body limit**: [`BODY_LIMIT`] bytes, `413` beyond (a form, a flag evaluation or a
//!   project is a few hundred).
//! - **Compression** of what is made per request (pages, server functions, the API's JSON, the
//!   exports), brotli or gzip as the browser accepts; never the event streams (`text/event-stream`
//!   is left alone by tower-http's predicate, so each event leaves at once), and never what is
//!   already compressed (the static files, `server::assets`).

use axum::http::{HeaderName, Request};
use axum::Router;
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// How long a request may take to start its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A new request id: 16 random hex digits.
#[derive(Clone, Copy, Debug, Default)]
struct RandomId;

impl MakeRequestId for RandomId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        axum::http::HeaderValue::from_str(&crate::db::random_hex(8)).ok().map(RequestId::new)
    }
}

/// `router` behind the layers above (the last one added is the first a request meets).
pub fn layers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", id, method = %request.method(), path = request.uri().path())
        }))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), RandomId))
}
