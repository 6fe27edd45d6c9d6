//! The observability kit against a real Prometheus (Debian's `prometheus`, which
//! `scripts/test.sh` installs): it scrapes a console running a backfill every second, loads
//! `deploy/prometheus/alerts.yml`, and answers every query of `deploy/grafana/sti-rollout.json`
//! and every alert's signal with data. A query that returns nothing — a renamed metric, a
//! wrong label — fails the test; so does a rule that does not load, and a prod flag change
//! that does not fire its alert.

use crate::support::{call, cli, config, config_vars, stdout, Backend, TestApp};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use sti_rollout::domain::environment::Environment;

const TOKEN: &str = "scrape-token-for-the-test";

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_prometheus(dir: &Path, console: &str) -> Prometheus {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yml");
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let target = console.trim_start_matches("http://");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\nscrape_configs:\n  - job_name: sti-rollout\n    authorization:\n      type: Bearer\n      credentials_file: {}\n    static_configs:\n      - targets: ['{target}']\n",
        dir.join("token").display()
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("Debian's prometheus on PATH (scripts/test.sh installs it: ensure_prometheus)");
    Prometheus { child, url: format!("http://127.0.0.1:{port}") }
}

async fn get(url: &str) -> Option<Value> {
    let answer = reqwest::get(url).await.ok()?;
    answer.json::<Value>().await.ok()
}

async fn query(prometheus: &Prometheus, promql: &str) -> Value {
    let url = format!("{}/api/v1/query", prometheus.url);
    let answer = reqwest::Client::new().post(url).form(&[("query", promql)]).send().await.unwrap();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"].clone()
}

/// Every `expr` under `targets` anywhere in the dashboard.
fn dashboard_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(targets)) = map.get("targets") {
                out.extend(targets.iter().filter_map(|t| t["expr"].as_str().map(str::to_owned)));
            }
            map.values().for_each(|v| dashboard_queries(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// An alert's signal: its expression without the comparison at its end (the convention
/// `deploy/prometheus/alerts.yml` states), found outside any parentheses or braces.
fn signal(expr: &str) -> &str {
    let bytes = expr.as_bytes();
    let mut depth = 0_i32;
    let mut last = None;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            b'>' | b'<' | b'=' if depth == 0 && i > 0 && bytes[i - 1] == b' ' => last = Some(i),
            _ => {}
        }
    }
    let at = last.unwrap_or_else(|| panic!("no comparison at the end of {expr}"));
    expr[..at].trim()
}

#[test]
fn an_alerts_signal_is_what_comes_before_its_last_comparison() {
    assert_eq!(signal("a{x=\"1\"} == 1"), "a{x=\"1\"}");
    assert_eq!(signal("(time() - b) * on (e) c{s=\"r\"} > 600"), "(time() - b) * on (e) c{s=\"r\"}");
    assert_eq!(signal("sum(rate(x[5m])) / sum(rate(y[5m])) >= 0.01"), "sum(rate(x[5m])) / sum(rate(y[5m]))");
}

async fn wait_until(what: &str, prometheus: &Prometheus, dir: &Path, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} ({}); prometheus logged:\n{}",
            prometheus.url,
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_running_backfill_and_every_dashboard_query_and_alert_signal_has_data() {
    let (mut config, dir) = config(Backend::Sqlite, [30_000, 10, 10]).await;
    config.metrics_token = Some(TOKEN.to_owned());
    let app = TestApp::start(&config).await;
    let prometheus = start_prometheus(dir.path(), &app.address);

    // the applications' API, so that its histogram has series
    let key = stdout(&cli(&["apikey", "create", "--env", "dev", "--scope", "read"], &config_vars(&config)));
    let api = reqwest::Client::new();
    for _ in 0..20 {
        let answer = api
            .get(format!("{}/api/projects?limit=5", app.address))
            .bearer_auth(key.trim())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
    }
    // a backfill of 300 chunks, paced so that it runs while Prometheus scrapes
    let (status, body) =
        call(&app, &app.client, "start_run", "env=dev&kind=backfill&chunk_size=100&pause_ms=40&confirm=")
            .await;
    assert_eq!(status, 200, "{body}");

    wait_until("the console's target to be up", &prometheus, dir.path(), async || {
        let Some(targets) = get(&format!("{}/api/v1/targets", prometheus.url)).await else { return false };
        targets["data"]["activeTargets"][0]["health"] == "up"
    })
    .await;
    // rate() needs two samples of a running run in its window
    wait_until("a running run with chunks, scraped twice", &prometheus, dir.path(), async || {
        let running = query(
            &prometheus,
            "sum_over_time(sti_backfill_run_state{environment=\"dev\",state=\"running\"}[1m])",
        )
        .await;
        let chunks =
            query(&prometheus, "sti_backfill_last_chunk_timestamp_seconds{environment=\"dev\"} > 0").await;
        running[0]["value"][1].as_str().is_some_and(|n| n.parse::<f64>().unwrap_or(0.0) >= 3.0)
            && chunks.as_array().is_some_and(|c| !c.is_empty())
    })
    .await;

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/sti-rollout.json"))
            .unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    assert!(queries.len() >= 12, "the dashboard's queries: {queries:?}");
    let mut empty = Vec::new();
    for expr in &queries {
        let promql = expr.replace("$environment", ".*");
        if query(&prometheus, &promql).await.as_array().is_none_or(|r| r.is_empty()) {
            empty.push(promql);
        }
    }
    assert!(empty.is_empty(), "dashboard queries without data: {empty:#?}");
    let variable = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "environment")
        .expect("an environment variable");
    let metric = variable["query"].as_str().or(variable["query"]["query"].as_str()).unwrap();
    let metric = metric.trim_start_matches("label_values(").split(',').next().unwrap();
    assert_eq!(
        query(&prometheus, &format!("count by (environment) ({metric})")).await.as_array().unwrap().len(),
        3
    );

    let rules = get(&format!("{}/api/v1/rules", prometheus.url)).await.unwrap();
    let rules: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert!(rules.len() >= 5, "the alert rules loaded: {rules:?}");
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
        let expr = rule["query"].as_str().unwrap();
        let data = query(&prometheus, signal(expr)).await;
        assert!(
            data.as_array().is_some_and(|r| !r.is_empty()),
            "{}: its signal {} has no data",
            rule["name"],
            signal(expr)
        );
    }

    // a flag changed in prod fires its alert
    let control = crate::support::open(&config.control, sti_rollout::db::Schema::Control).await;
    sti_rollout::engine::operate::set_flag(
        &control,
        Environment::Prod,
        "user:test",
        true,
        None,
        Some("test"),
    )
    .await
    .unwrap();
    wait_until("StiProdFlagChanged to fire", &prometheus, dir.path(), async || {
        let Some(alerts) = get(&format!("{}/api/v1/alerts", prometheus.url)).await else { return false };
        alerts["data"]["alerts"].as_array().is_some_and(|all| {
            all.iter().any(|a| a["labels"]["alertname"] == "StiProdFlagChanged" && a["state"] == "firing")
        })
    })
    .await;
}
