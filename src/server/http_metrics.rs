//! `http_request_duration_seconds`: how long the applications' API requests take (the projects
//! API and flag evaluation), a Prometheus histogram by route (the matched path, e.g.
//! `/api/projects/{id}`), method and status, kept in memory since the server started
//! (prometheus-client's `Family` of `Histogram`s).

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;
use std::time::Instant;

/// Upper bounds of the buckets, in seconds.
pub const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// One series' labels, in the order they are written.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: String,
}

/// The histograms, by (route, method, status).
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self { requests: Family::new_with_constructor(|| Histogram::new(BUCKETS)) }
    }
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels =
            RequestLabels { route: route.to_owned(), method: method.to_owned(), status: status.to_string() };
        self.requests.get_or_create(&labels).observe(seconds);
    }
}

/// A method as a label: the standard ones by name, any other token `OTHER`, so that nobody
/// can add series to `/metrics` by inventing methods.
fn method_label(method: &axum::http::Method) -> &str {
    match method.as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" | "CONNECT" | "TRACE") => {
            known
        }
        _ => "OTHER",
    }
}

/// Times a request by its matched route; layered on the applications' routes only
/// (`/api/projects…`, `/ofrep/…`).
pub async fn record(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()) else {
        return next.run(request).await;
    };
    let method = method_label(request.method()).to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe(&route, &method, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}
