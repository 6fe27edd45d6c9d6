//! Webhooks against a local receiver (PRODUCT §8, issue 18): delivered and signed, retried
//! after a 500, given up after the limit, and nothing lost across a restart — an event that
//! happens while no console runs is delivered by the next one, and a delivery that was being
//! retried goes on from its count. Two `serve` processes in turn on one control database.

use crate::support::{add_user, config, config_vars, open, signed_in, Backend, Served};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use sqlx::Row;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sti_rollout::db::Schema;
use sti_rollout::domain::access::Role;
use sti_rollout::domain::environment::Environment;
use sti_rollout::engine::operate;

const SECRET: &str = "receiver shared secret";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
    answered: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// `/switch` answers 503 until this is set.
    healthy: Arc<Mutex<bool>>,
}

impl Receiver {
    fn at(&self, path: &str) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

/// `/ok` answers 200; `/flaky` 500 the first time, then 200; `/down` always 500; `/switch` 503
/// until healthy; `/gone` 410.
async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let path = format!("/{path}");
    let before = receiver.at(&path).len();
    let status = match path.as_str() {
        "/ok" => StatusCode::OK,
        "/flaky" if before == 0 => StatusCode::INTERNAL_SERVER_ERROR,
        "/flaky" => StatusCode::NO_CONTENT,
        "/switch" if *receiver.healthy.lock().unwrap() => StatusCode::OK,
        "/switch" => StatusCode::SERVICE_UNAVAILABLE,
        "/gone" => StatusCode::GONE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    receiver.got.lock().unwrap().push(Received { path, headers, body, answered: status.as_u16() });
    status
}

async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let app =
        axum::Router::new().route("/{*path}", axum::routing::post(receive)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, address)
}

fn console(vars: &BTreeMap<String, String>, config_file: &std::path::Path, log: &std::path::Path) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sti-rollout"));
    for var in ["STI_CONFIG", "STI_ADDR", "LEPTOS_SITE_ADDR"] {
        command.env_remove(var);
    }
    command
        .envs(vars)
        .env("STI_LOG", "info,sqlx=error")
        .args(["--config", &config_file.display().to_string(), "serve", "--addr", "127.0.0.1:0"])
        .stderr(std::fs::File::create(log).unwrap());
    Served::start(command)
}

async fn wait_for(what: &str, log: &std::path::Path, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the console logged:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `X-STI-Signature` as the receiver checks it.
fn signed_correctly(r: &Received) -> bool {
    use hmac::Mac;
    let Some(signature) = r.headers.get("x-sti-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((t, v1)) = signature.strip_prefix("t=").and_then(|s| s.split_once(",v1=")) else { return false };
    let fresh = t.parse::<i64>().is_ok_and(|t| (sti_rollout::db::now_ms() / 1000 - t).abs() < 300);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    fresh && expected == v1 && r.headers.get("x-sti-timestamp").and_then(|v| v.to_str().ok()) == Some(t)
}

async fn deliveries(
    control: &sti_rollout::db::Database,
) -> Vec<(String, String, String, i64, Option<String>)> {
    sqlx::query("select hook, event, state, attempts, last_error from webhook_deliveries order by id")
        .fetch_all(control.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (r.get("hook"), r.get("event"), r.get("state"), r.get::<i64, _>("attempts"), r.get("last_error"))
        })
        .collect()
}

async fn delivered_signed_retried_given_up_and_nothing_lost_on_restart(backend: Backend) {
    let (config, dir) = config(backend, [100, 10, 10]).await;
    let vars = config_vars(&config);
    let (receiver, address) = start_receiver().await;
    let file = dir.path().join("sti.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[webhooks.dev]]
name = "ops"
url = "{address}/ok"
secret = "{SECRET}"

[[webhooks.dev]]
name = "chat"
url = "{address}/flaky"
format = "slack"
events = ["flag.changed"]

[[webhooks.dev]]
name = "broken"
url = "{address}/down"
events = ["flag.changed"]
max_attempts = 2

[[webhooks.dev]]
name = "gone"
url = "{address}/gone"
events = ["flag.changed"]

[[webhooks.dev]]
name = "later"
url = "{address}/switch"
events = ["flag.changed"]
max_attempts = 30
"#
        ),
    )
    .unwrap();
    let control = open(&config.control, Schema::Control).await;
    let log = dir.path().join("first.log");
    let first = console(&vars, &file, &log);
    // the first look sets the cursors at what happened before: that is not announced
    wait_for("the cursors", &log, async || {
        sqlx::query_scalar::<_, i64>("select count(*) from webhook_cursors")
            .fetch_one(control.pool())
            .await
            .unwrap()
            == 2
    })
    .await;

    let started = Instant::now();
    operate::set_flag(&control, Environment::Dev, "user:alice", true, Some("go"), Some("demo first"))
        .await
        .unwrap();
    wait_for("ops to hear of the override and the flag", &log, async || receiver.at("/ok").len() == 2).await;
    let ops = receiver.at("/ok");
    // deliveries go out side by side: in either order
    let event = |r: &Received| r.headers["x-sti-event"].to_str().unwrap().to_owned();
    let mut events: Vec<_> = ops.iter().map(event).collect();
    events.sort();
    assert_eq!(events, ["flag.changed", "gate.overridden"]);
    assert!(ops.iter().all(signed_correctly), "every body is signed: {:?}", ops[0].headers);
    let flag = ops.iter().find(|r| event(r) == "flag.changed").unwrap();
    let body: serde_json::Value = serde_json::from_str(&flag.body).unwrap();
    assert_eq!(body["summary"], "dev: ENABLE_STI turned on by user:alice: go");
    assert_eq!(body["environment"], "dev");
    assert!(started.elapsed() < Duration::from_secs(10), "delivered within seconds: {:?}", started.elapsed());

    wait_for("chat's retry after its 500", &log, async || receiver.at("/flaky").len() == 2).await;
    let chat = receiver.at("/flaky");
    assert_eq!(chat.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 204]);
    assert_eq!(chat[0].body, chat[1].body, "a retry sends the same body");
    assert!(chat[0].headers.get("x-sti-signature").is_none(), "no secret, no signature");
    let slack: serde_json::Value = serde_json::from_str(&chat[0].body).unwrap();
    assert_eq!(slack["text"], "dev: ENABLE_STI turned on by user:alice: go");
    assert_eq!(slack["blocks"][0]["type"], "section");
    wait_for("broken to be given up", &log, async || {
        deliveries(&control).await.iter().any(|d| d.0 == "broken" && d.2 == "failed")
    })
    .await;
    assert_eq!(receiver.at("/down").len(), 2, "max_attempts = 2");
    wait_for("gone to be given up", &log, async || {
        deliveries(&control).await.iter().any(|d| d.0 == "gone" && d.2 == "failed")
    })
    .await;
    assert_eq!(receiver.at("/gone").len(), 1, "a 410 is not retried");
    wait_for("later to be retried", &log, async || receiver.at("/switch").len() >= 2).await;

    // the delivery log on the page
    add_user(&control, "viewer", Role::Viewer).await;
    let viewer = signed_in(&first.address, "viewer").await;
    let page = viewer.get(format!("{}/env/dev", first.address)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-testid=\"deliveries\""), "the page has the delivery log");
    assert!(
        page.contains("given up: the receiver answered 500 Internal Server Error; gave up after 2 attempts"),
        "{page}"
    );
    assert!(page.contains("given up: the receiver answered 410 Gone; not retried"));
    assert!(page.contains("delivered (HTTP 204)"));
    assert!(page.contains("retrying at"));
    assert!(!page.contains(&address), "the page never shows a webhook's address");

    // the console dies; something happens while none runs; the receiver recovers
    drop(first);
    let retried_before = receiver.at("/switch").len();
    operate::emergency_stop(
        &control,
        &open(&config.targets[Environment::Dev].url, Schema::Target).await,
        Environment::Dev,
        "user:bob",
        "smoke",
    )
    .await
    .unwrap();
    *receiver.healthy.lock().unwrap() = true;
    let log = dir.path().join("second.log");
    let _second = console(&vars, &file, &log);
    wait_for("the stop and the pending retry", &log, async || {
        receiver.at("/ok").len() == 3 && receiver.at("/switch").iter().any(|r| r.answered == 200)
    })
    .await;
    let stop = &receiver.at("/ok")[2];
    assert_eq!(stop.headers["x-sti-event"], "emergency_stop");
    assert!(signed_correctly(stop));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.at("/ok").len(), 3, "nothing delivered is sent again by the next console");
    let later = receiver.at("/switch");
    assert_eq!(later.iter().filter(|r| r.answered == 200).count(), 1);
    let rows = deliveries(&control).await;
    let later_row = rows.iter().find(|d| d.0 == "later").unwrap();
    assert_eq!(later_row.2, "delivered");
    assert_eq!(
        later_row.3 as usize,
        later.len(),
        "the count went on across the restart ({retried_before} before)"
    );
    assert_eq!(rows.iter().filter(|d| d.0 == "ops").count(), 3);
    assert_eq!(rows.len(), 3 + 4, "ops: 3 events; chat, broken, gone, later: the flag change each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_webhooks_are_delivered_signed_retried_given_up_and_survive_a_restart() {
    delivered_signed_retried_given_up_and_nothing_lost_on_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_webhooks_are_delivered_signed_retried_given_up_and_survive_a_restart() {
    delivered_signed_retried_given_up_and_nothing_lost_on_restart(Backend::Postgres).await;
}
