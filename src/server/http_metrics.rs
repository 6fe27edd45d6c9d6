//! `http_request_duration_seconds`: how long the applications' API requests take (the projects
//! API and flag evaluation), a Prometheus histogram by route (the matched path, e.g.
//! `/api/projects/{id}`), method and status, kept in memory since the server started.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Upper bounds of the buckets, in seconds.
pub const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Clone, Debug, Default, PartialEq)]
struct Histogram {
    /// Requests at or under each bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The histograms, by (route, method, status).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let Ok(mut series) = self.series.lock() else { return };
        let histogram = series.entry((route.to_owned(), method.to_owned(), status)).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The exposition text: `_bucket` (cumulative, `+Inf` last), `_sum` and `_count` per series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds How long API requests took, by route, method and status."
        );
        let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
        let Ok(series) = self.series.lock() else { return out };
        for ((route, method, status), h) in series.iter() {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_with_sum_and_count() {
        let metrics = HttpMetrics::default();
        metrics.observe("/api/projects/{id}", "GET", 200, 0.0007);
        metrics.observe("/api/projects/{id}", "GET", 200, 0.02);
        metrics.observe("/api/projects/{id}", "GET", 200, 9.0);
        metrics.observe("/api/projects", "POST", 422, 0.003);
        let text = metrics.render();
        let get = "route=\"/api/projects/{id}\",method=\"GET\",status=\"200\"";
        assert!(text.contains(&format!("http_request_duration_seconds_bucket{{{get},le=\"0.0005\"}} 0")));
        assert!(text.contains(&format!("http_request_duration_seconds_bucket{{{get},le=\"0.001\"}} 1")));
        assert!(text.contains(&format!("http_request_duration_seconds_bucket{{{get},le=\"0.025\"}} 2")));
        assert!(text.contains(&format!("http_request_duration_seconds_bucket{{{get},le=\"2.5\"}} 2")));
        assert!(text.contains(&format!("http_request_duration_seconds_bucket{{{get},le=\"+Inf\"}} 3")));
        assert!(text.contains(&format!("http_request_duration_seconds_count{{{get}}} 3")));
        assert!(text.contains("status=\"422\"}"));
        assert_eq!(text.matches("# TYPE").count(), 1);
    }
}
