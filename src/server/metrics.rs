//! `/metrics` in the Prometheus text format. Every known label set is present from the start,
//! at zero, so dashboards and alerts see a series before the first run.

use super::state::AppState;
use crate::domain::run::{HoldKind, RunState};
use crate::engine::metrics::{snapshot, EnvironmentMetrics, DURATION_BUCKETS};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

pub async fn metrics(State(state): State<AppState>) -> Response {
    match snapshot(&state.control).await {
        Ok(all) => {
            let mut body = render(all.iter().map(|(env, m)| (env.as_str(), m)));
            body.push_str(&state.http_metrics.render());
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read metrics from the control database");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable: the control database could not be read\n")
                .into_response()
        }
    }
}

/// The exposition text for `(environment, figures)` pairs.
pub fn render<'a>(all: impl Iterator<Item = (&'a str, &'a EnvironmentMetrics)> + Clone) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP sti_backfill_processed_total Legacy rows processed by backfill runs.");
    let _ = writeln!(out, "# TYPE sti_backfill_processed_total counter");
    for (env, m) in all.clone() {
        for (status, project_type, value) in [
            ("created", "school", m.school_created),
            ("created", "self_study", m.self_study_created),
            ("skipped", "school", m.school_skipped),
            ("skipped", "self_study", m.self_study_skipped),
            ("error", "unidentified", m.errors),
        ] {
            let _ = writeln!(
                out,
                "sti_backfill_processed_total{{status=\"{status}\",project_type=\"{project_type}\",environment=\"{env}\"}} {value}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP sti_backfill_chunk_duration_seconds How long one backfill chunk's transaction took."
    );
    let _ = writeln!(out, "# TYPE sti_backfill_chunk_duration_seconds histogram");
    for (env, m) in all.clone() {
        for (le, count) in DURATION_BUCKETS.iter().zip(m.duration_buckets) {
            let _ = writeln!(
                out,
                "sti_backfill_chunk_duration_seconds_bucket{{environment=\"{env}\",le=\"{le}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "sti_backfill_chunk_duration_seconds_bucket{{environment=\"{env}\",le=\"+Inf\"}} {}",
            m.duration_count
        );
        let _ = writeln!(
            out,
            "sti_backfill_chunk_duration_seconds_sum{{environment=\"{env}\"}} {}",
            m.duration_sum_ms as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "sti_backfill_chunk_duration_seconds_count{{environment=\"{env}\"}} {}",
            m.duration_count
        );
    }
    let _ = writeln!(
        out,
        "# HELP sti_backfill_last_success_timestamp_seconds When the last backfill run completed (0: never)."
    );
    let _ = writeln!(out, "# TYPE sti_backfill_last_success_timestamp_seconds gauge");
    for (env, m) in all.clone() {
        let seconds = m.last_success_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        let _ =
            writeln!(out, "sti_backfill_last_success_timestamp_seconds{{environment=\"{env}\"}} {seconds}");
    }
    let _ = writeln!(
        out,
        "# HELP sti_backfill_run_state The state of the environment's newest run (1 for its state)."
    );
    let _ = writeln!(out, "# TYPE sti_backfill_run_state gauge");
    for (env, m) in all.clone() {
        for state in RunState::ALL {
            let value = i32::from(m.state == Some(state));
            let _ =
                writeln!(out, "sti_backfill_run_state{{environment=\"{env}\",state=\"{state}\"}} {value}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP sti_backfill_rows_per_second Rows per second of the running backfill (0 when none runs)."
    );
    let _ = writeln!(out, "# TYPE sti_backfill_rows_per_second gauge");
    for (env, m) in all.clone() {
        let _ =
            writeln!(out, "sti_backfill_rows_per_second{{environment=\"{env}\"}} {:.1}", m.rows_per_second);
    }
    for (kind, help) in [
        (HoldKind::Waiting, "1 while the running run waits out a fault of its database, labelled with the fault."),
        (HoldKind::Throttled, "1 while the running run is held by a health signal over its threshold, labelled with the signal."),
    ] {
        let name = format!("sti_backfill_{}", kind.as_str());
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (env, m) in all.clone() {
            match &m.hold {
                Some((held, reason)) if *held == kind => {
                    let _ = writeln!(out, "{name}{{environment=\"{env}\",reason=\"{}\"}} 1", label_value(reason));
                }
                _ => {
                    let _ = writeln!(out, "{name}{{environment=\"{env}\",reason=\"none\"}} 0");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP sti_backfill_last_chunk_timestamp_seconds When the newest run's last chunk committed (0: none yet)."
    );
    let _ = writeln!(out, "# TYPE sti_backfill_last_chunk_timestamp_seconds gauge");
    for (env, m) in all.clone() {
        let seconds = m.last_chunk_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        let _ = writeln!(out, "sti_backfill_last_chunk_timestamp_seconds{{environment=\"{env}\"}} {seconds}");
    }
    let _ = writeln!(out, "# HELP sti_flag_enabled Whether the flag is on (1) in the environment.");
    let _ = writeln!(out, "# TYPE sti_flag_enabled gauge");
    for (env, m) in all.clone() {
        for flag in &m.flags {
            let (key, on) = (label_value(&flag.key), i32::from(flag.enabled));
            let _ = writeln!(out, "sti_flag_enabled{{environment=\"{env}\",flag=\"{key}\"}} {on}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP sti_flag_changes_total Times the flag was set: switched on or off, or turned off by an emergency stop."
    );
    let _ = writeln!(out, "# TYPE sti_flag_changes_total counter");
    for (env, m) in all {
        for flag in &m.flags {
            let key = label_value(&flag.key);
            let _ = writeln!(
                out,
                "sti_flag_changes_total{{environment=\"{env}\",flag=\"{key}\"}} {}",
                flag.changes
            );
        }
    }
    out
}

/// A label value as the text format needs it: backslash, quote and newline escaped.
fn label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_series_is_present_at_zero_before_any_run() {
        let empty = EnvironmentMetrics::default();
        let text = render([("dev", &empty), ("prod", &empty)].into_iter());
        assert!(text.contains(
            "sti_backfill_processed_total{status=\"created\",project_type=\"school\",environment=\"dev\"} 0"
        ));
        assert!(text.contains("sti_backfill_processed_total{status=\"error\",project_type=\"unidentified\",environment=\"prod\"} 0"));
        assert!(
            text.contains("sti_backfill_chunk_duration_seconds_bucket{environment=\"dev\",le=\"+Inf\"} 0")
        );
        assert!(text.contains("sti_backfill_last_success_timestamp_seconds{environment=\"prod\"} 0"));
        assert!(text.contains("sti_backfill_run_state{environment=\"dev\",state=\"running\"} 0"));
        assert!(text.contains("sti_backfill_waiting{environment=\"dev\",reason=\"none\"} 0"));
        assert!(text.contains("sti_backfill_throttled{environment=\"prod\",reason=\"none\"} 0"));
        assert!(text.contains("sti_backfill_last_chunk_timestamp_seconds{environment=\"dev\"} 0"));
        assert_eq!(text.matches("# TYPE").count(), 10);
    }

    #[test]
    fn a_held_run_is_one_series_labelled_with_its_reason() {
        let held = EnvironmentMetrics {
            hold: Some((HoldKind::Throttled, "replica \"lag\"".into())),
            ..EnvironmentMetrics::default()
        };
        let text = render([("prod", &held)].into_iter());
        assert!(
            text.contains("sti_backfill_throttled{environment=\"prod\",reason=\"replica \\\"lag\\\"\"} 1"),
            "{text}"
        );
        assert!(text.contains("sti_backfill_waiting{environment=\"prod\",reason=\"none\"} 0"));
    }
}
