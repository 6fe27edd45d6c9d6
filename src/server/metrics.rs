//! `/metrics` in the Prometheus text format, written by prometheus-client. Every known label set
//! is present from the start, at zero, so dashboards and alerts see a series before the first
//! run.

use super::http_metrics::HttpMetrics;
use super::state::AppState;
use crate::domain::environment::Environment;
use crate::domain::health::Health;
use crate::domain::run::{HoldKind, RunState};
use crate::engine::metrics::{snapshot, EnvironmentMetrics, DURATION_BUCKETS};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

pub async fn metrics(State(state): State<AppState>) -> Response {
    match snapshot(&state.control).await {
        Ok(all) => match render(all, &state.http_metrics) {
            Ok(body) => ([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], body).into_response(),
            Err(std::fmt::Error) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be written\n").into_response()
            }
        },
        Err(error) => {
            tracing::warn!(%error, "cannot read metrics from the control database");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable: the control database could not be read\n")
                .into_response()
        }
    }
}

/// The exposition text (Prometheus text format 0.0.4, by prometheus-client) of every
/// environment's figures and of the API's request histograms.
pub fn render(
    all: BTreeMap<Environment, EnvironmentMetrics>,
    http: &HttpMetrics,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures(all)));
    registry.register(
        "http_request_duration_seconds",
        "How long API requests took, by route, method and status",
        http.requests.clone(),
    );
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

/// One scrape's figures, read from the control database (so every replica says the same):
/// written as constant metrics at each scrape rather than kept in this process.
#[derive(Debug)]
struct Figures(BTreeMap<Environment, EnvironmentMetrics>);

impl Figures {
    fn each(&self) -> impl Iterator<Item = (&'static str, &EnvironmentMetrics)> {
        self.0.iter().map(|(env, m)| (env.as_str(), m))
    }
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "sti_backfill_processed",
            "Legacy rows processed by backfill runs",
            None,
            MetricType::Counter,
        )?;
        for (env, m) in self.each() {
            for (status, project_type, value) in [
                ("created", "school", m.school_created),
                ("created", "self_study", m.self_study_created),
                ("skipped", "school", m.school_skipped),
                ("skipped", "self_study", m.self_study_skipped),
                ("error", "unidentified", m.errors),
            ] {
                let labels = [("status", status), ("project_type", project_type), ("environment", env)];
                ConstCounter::new(value.max(0) as u64).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "sti_backfill_chunk_duration_seconds",
            "How long one backfill chunk's transaction took",
            None,
            MetricType::Histogram,
        )?;
        for (env, m) in self.each() {
            // the snapshot's counts are cumulative; the encoder sums per-bucket counts itself
            let mut below = 0;
            let buckets: Vec<(f64, u64)> = DURATION_BUCKETS
                .iter()
                .zip(m.duration_buckets)
                .map(|(le, cumulative)| {
                    let here = (cumulative - below).max(0) as u64;
                    below = cumulative;
                    (*le, here)
                })
                .collect();
            family.encode_family(&[("environment", env)])?.encode_histogram::<NoLabelSet>(
                m.duration_sum_ms as f64 / 1000.0,
                m.duration_count.max(0) as u64,
                &buckets,
                None,
            )?;
        }

        let seconds = |ms: Option<i64>| ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        gauge(
            &mut encoder,
            "sti_backfill_last_success_timestamp_seconds",
            "When the last backfill run completed (0: never)",
            self.each().map(|(env, m)| (vec![("environment", env.to_owned())], seconds(m.last_success_ms))),
        )?;
        gauge(
            &mut encoder,
            "sti_backfill_run_state",
            "The state of the environment's newest run (1 for its state)",
            self.each().flat_map(|(env, m)| {
                RunState::ALL.into_iter().map(move |state| {
                    let labels = vec![("environment", env.to_owned()), ("state", state.as_str().to_owned())];
                    (labels, f64::from(u8::from(m.state == Some(state))))
                })
            }),
        )?;
        gauge(
            &mut encoder,
            "sti_backfill_run_health",
            "What the environment's newest run is doing now (1 for its health): running, paused, waiting, throttled, runner_lost, …",
            self.each().flat_map(|(env, m)| {
                Health::NAMES.into_iter().map(move |name| {
                    let labels = vec![("environment", env.to_owned()), ("health", name.to_owned())];
                    (labels, f64::from(u8::from(m.health == Some(name))))
                })
            }),
        )?;
        gauge(
            &mut encoder,
            "sti_backfill_rows_per_second",
            "Rows per second of the running backfill (0 when none runs)",
            self.each().map(|(env, m)| {
                (vec![("environment", env.to_owned())], (m.rows_per_second * 10.0).round() / 10.0)
            }),
        )?;
        for (kind, help) in [
            (HoldKind::Waiting, "1 while the running run waits out a fault of its database, labelled with the fault"),
            (HoldKind::Throttled, "1 while the running run is held by a health signal over its threshold, labelled with the signal"),
        ] {
            let name = format!("sti_backfill_{}", kind.as_str());
            gauge(
                &mut encoder,
                &name,
                help,
                self.each().map(|(env, m)| match &m.hold {
                    Some((held, reason)) if *held == kind => {
                        (vec![("environment", env.to_owned()), ("reason", reason.clone())], 1.0)
                    }
                    _ => (vec![("environment", env.to_owned()), ("reason", "none".to_owned())], 0.0),
                }),
            )?;
        }
        gauge(
            &mut encoder,
            "sti_backfill_last_chunk_timestamp_seconds",
            "When the newest run's last chunk committed (0: none yet)",
            self.each().map(|(env, m)| (vec![("environment", env.to_owned())], seconds(m.last_chunk_ms))),
        )?;
        gauge(
            &mut encoder,
            "sti_flag_enabled",
            "Whether the flag is on (1) in the environment",
            self.each().flat_map(|(env, m)| {
                m.flags.iter().map(move |f| {
                    (
                        vec![("environment", env.to_owned()), ("flag", f.key.clone())],
                        f64::from(u8::from(f.enabled)),
                    )
                })
            }),
        )?;
        let mut family = encoder.encode_descriptor(
            "sti_flag_changes",
            "Times the flag was set: switched on or off, or turned off by an emergency stop",
            None,
            MetricType::Counter,
        )?;
        for (env, m) in self.each() {
            for flag in &m.flags {
                let labels = [("environment", env), ("flag", flag.key.as_str())];
                ConstCounter::new(flag.changes.max(0) as u64).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// A gauge family: its series' labels and values.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Vec<(&'static str, String)>, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(all: &[(Environment, EnvironmentMetrics)], http: &HttpMetrics) -> String {
        render(all.iter().cloned().collect(), http).unwrap()
    }

    #[test]
    fn every_known_series_is_present_at_zero_before_any_run() {
        let empty = EnvironmentMetrics::default();
        let text =
            text(&[(Environment::Dev, empty.clone()), (Environment::Prod, empty)], &HttpMetrics::default());
        for line in [
            "sti_backfill_processed_total{status=\"created\",project_type=\"school\",environment=\"dev\"} 0",
            "sti_backfill_processed_total{status=\"error\",project_type=\"unidentified\",environment=\"prod\"} 0",
            "sti_backfill_chunk_duration_seconds_bucket{environment=\"dev\",le=\"+Inf\"} 0",
            "sti_backfill_last_success_timestamp_seconds{environment=\"prod\"} 0",
            "sti_backfill_run_state{environment=\"dev\",state=\"running\"} 0",
            "sti_backfill_run_health{environment=\"dev\",health=\"runner_lost\"} 0",
            "sti_backfill_waiting{environment=\"dev\",reason=\"none\"} 0",
            "sti_backfill_throttled{environment=\"prod\",reason=\"none\"} 0",
            "sti_backfill_last_chunk_timestamp_seconds{environment=\"dev\"} 0",
            "# TYPE sti_backfill_processed_total counter",
        ] {
            assert!(text.lines().any(|l| l == line || l == format!("{line}.0")), "{line} in\n{text}");
        }
        // the API's histogram has no family until its first request
        assert_eq!(text.matches("# TYPE").count(), 11, "{text}");
    }

    #[test]
    fn chunk_durations_are_a_cumulative_histogram() {
        let mut m =
            EnvironmentMetrics { duration_count: 3, duration_sum_ms: 2500, ..EnvironmentMetrics::default() };
        // cumulative, as the snapshot counts them: one chunk ≤ 5 ms, two ≤ 1 s, three ≤ 10 s
        m.duration_buckets = [1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3];
        let text = text(&[(Environment::Staging, m)], &HttpMetrics::default());
        let bucket = |le: &str| {
            format!("sti_backfill_chunk_duration_seconds_bucket{{environment=\"staging\",le=\"{le}\"}} ")
        };
        for (le, n) in [("0.005", 1), ("0.5", 1), ("1", 2), ("10", 3), ("+Inf", 3)] {
            assert!(text.contains(&format!("{}{n}\n", bucket(le))), "le {le}: {n} in\n{text}");
        }
        assert!(text.contains("sti_backfill_chunk_duration_seconds_sum{environment=\"staging\"} 2.5\n"));
        assert!(text.contains("sti_backfill_chunk_duration_seconds_count{environment=\"staging\"} 3\n"));
    }

    #[test]
    fn a_held_run_is_one_series_labelled_with_its_reason() {
        let held = EnvironmentMetrics {
            hold: Some((HoldKind::Throttled, "replica \"lag\"".into())),
            ..EnvironmentMetrics::default()
        };
        let text = text(&[(Environment::Prod, held)], &HttpMetrics::default());
        assert!(
            text.contains("sti_backfill_throttled{environment=\"prod\",reason=\"replica \\\"lag\\\"\"} 1"),
            "{text}"
        );
        assert!(text.contains("sti_backfill_waiting{environment=\"prod\",reason=\"none\"} 0"));
    }

    #[test]
    fn api_requests_are_a_histogram_by_route_method_and_status() {
        let http = HttpMetrics::default();
        http.observe("/api/projects/{id}", "GET", 200, 0.0007);
        http.observe("/api/projects/{id}", "GET", 200, 0.02);
        http.observe("/api/projects/{id}", "GET", 200, 9.0);
        http.observe("/api/projects", "POST", 422, 0.003);
        let text = text(&[], &http);
        let get = "route=\"/api/projects/{id}\",method=\"GET\",status=\"200\"";
        for (le, n) in [("0.0005", 0), ("0.001", 1), ("0.025", 2), ("2.5", 2), ("+Inf", 3)] {
            assert!(
                text.contains(&format!("http_request_duration_seconds_bucket{{{get},le=\"{le}\"}} {n}\n")),
                "{le} {n}\n{text}"
            );
        }
        assert!(text.contains(&format!("http_request_duration_seconds_count{{{get}}} 3\n")));
        assert!(text.contains("status=\"422\""));
    }
}
