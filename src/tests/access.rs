//! Access control over HTTP: every page, server function and endpoint — taken from the router's
//! own registries, so a new one cannot escape — refuses anonymous and cross-origin callers.

use crate::support::{browser, config, open, Backend, TestApp, TEST_PASSWORD};
use sti_rollout::api::client::HEADER as CONSOLE;
use sti_rollout::db::{users, Schema};
use sti_rollout::domain::access::{Role, Username};

/// Every registered server function with the role it needs and a valid body. A function missing
/// from this table fails the test: a new endpoint cannot escape the access checks.
fn server_functions() -> Vec<(String, Role, &'static str)> {
    const TABLE: [(&str, Role, &str); 23] = [
        ("get_overview", Role::Viewer, ""),
        ("whoami", Role::Viewer, ""),
        ("list_api_keys", Role::Admin, ""),
        ("revoke_api_key", Role::Admin, "id=1"),
        ("get_environment", Role::Viewer, "env=dev"),
        ("dead_letters", Role::Viewer, "env=dev&page=1"),
        ("start_run", Role::Operator, "env=dev&kind=backfill&chunk_size=100&pause_ms=0&confirm="),
        ("dry_run", Role::Operator, "env=dev&chunk_size=100"),
        ("plan_rollback", Role::Operator, "env=dev"),
        ("control_run", Role::Operator, "env=dev&run_id=1&request=pause"),
        ("pace_run", Role::Operator, "env=dev&run_id=1&chunk_size=10&pause_ms=0"),
        ("verify_environment", Role::Operator, "env=dev"),
        ("emergency_stop", Role::Operator, "env=dev&confirm=&reason=access+test"),
        ("set_flag", Role::Operator, "env=dev&enabled=false&confirm=&reason=access+test"),
        ("sign_checklist", Role::Viewer, "env=dev&item_id=9&state=pass&comment=&evidence_url="),
        ("add_checklist_item", Role::Admin, "title=Access+test+item&owner_role=viewer"),
        ("retire_checklist_item", Role::Admin, "id=1"),
        ("set_d_day", Role::Admin, "date=2026-12-10&reason=access+test"),
        ("audit_log", Role::Viewer, "env=&actor=&action=&from=&to=&page=1"),
        ("blockers", Role::Operator, "env=dev"),
        ("acknowledge_stop", Role::Operator, "env=dev&note="),
        ("runbook", Role::Viewer, ""),
        ("my_signoffs", Role::Viewer, ""),
    ];
    leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| {
            let (_, role, body) = TABLE
                .iter()
                .find(|(name, _, _)| path.trim_start_matches("/api/").starts_with(name))
                .unwrap_or_else(|| panic!("server function {path} is missing from the access table"));
            (path.to_owned(), *role, *body)
        })
        .collect()
}

fn pages() -> Vec<String> {
    sti_rollout::server::startup::page_routes()
        .iter()
        .map(|route| route.path().replace("{env}", "dev").replace(":env", "dev"))
        .filter(|p| p != "/login")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_anonymous_and_cross_origin_callers() {
    let (config, _dir) = config(Backend::Sqlite, [5, 5, 5]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let viewer = app.sign_in_new(&control, "stakeholder", Role::Viewer).await;
    let admin = app.sign_in_new(&control, "boss", Role::Admin).await;
    sti_rollout::db::api_keys::create(
        &control,
        sti_rollout::domain::environment::Environment::Dev,
        sti_rollout::domain::access::Scope::Read,
        "test",
    )
    .await
    .unwrap();
    let anonymous = browser();
    let url = |path: &str| format!("{}{path}", app.address);

    let pages = pages();
    assert!(pages.contains(&"/".to_owned()), "{pages:?}");
    for page in &pages {
        let response = anonymous.get(url(page)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 303, "{page}");
        assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?next="), "{page}");
        assert_eq!(admin.get(url(page)).send().await.unwrap().status().as_u16(), 200, "{page}");
    }

    let functions = server_functions();
    assert_eq!(functions.len(), 23);
    for (function, role, body) in &functions {
        let call = |client: &reqwest::Client| {
            client
                .post(url(function))
                .header("content-type", "application/x-www-form-urlencoded")
                .header(CONSOLE.0, CONSOLE.1)
                .body(*body)
        };
        let without_header = admin
            .post(url(function))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(*body)
            .send()
            .await
            .unwrap();
        assert_eq!(without_header.status().as_u16(), 403, "{function}: not the console's client");
        assert_eq!(call(&anonymous).send().await.unwrap().status().as_u16(), 401, "{function}");
        let foreign = call(&admin).header("origin", "https://evil.example").send().await.unwrap();
        assert_eq!(foreign.status().as_u16(), 403, "{function}: cross-origin");
        let foreign = call(&admin).header("sec-fetch-site", "cross-site").send().await.unwrap();
        assert_eq!(foreign.status().as_u16(), 403, "{function}: cross-site");
        let as_viewer = call(&viewer).send().await.unwrap().status().as_u16();
        assert_eq!(as_viewer, if *role == Role::Viewer { 200 } else { 403 }, "{function} as a viewer");
        let as_admin = call(&admin).send().await.unwrap().status().as_u16();
        if *role == Role::Operator {
            // allowed; a missing run (404) or its state (409) may still refuse it, never the access check
            assert!(matches!(as_admin, 200 | 404 | 409), "{function} as an admin: {as_admin}");
        } else {
            assert_eq!(as_admin, 200, "{function} as an admin");
        }
    }
    let keys = sti_rollout::db::api_keys::list(&control).await.unwrap();
    assert!(keys[0].revoked_at.is_some(), "the admin revoked the key; the viewer could not");

    // every plain route, from the same list the router is built from
    use sti_rollout::server::routes::{plain_routes, Access};
    let routes = plain_routes();
    assert!(routes.len() >= 7);
    for route in &routes {
        let path = route.path.replace("{env}", "dev").replace("{run}", "1").replace("{id}", "1");
        if route.access == Access::ApiKey {
            // a session is not a key, and no key is no access, whatever the method or origin
            for client in [&anonymous, &viewer, &admin] {
                let status = client.request(route.method.clone(), url(&path)).send().await.unwrap().status();
                assert_eq!(status.as_u16(), 401, "{} {path} without a key", route.method);
            }
        } else if route.method == axum::http::Method::GET {
            let status = anonymous.get(url(&path)).send().await.unwrap().status().as_u16();
            match route.access {
                Access::Anyone => assert_eq!(status, 200, "{path} anonymously"),
                Access::SignedIn => assert!(matches!(status, 303 | 401), "{path} anonymously: {status}"),
                Access::SignedInOrMetricsToken => assert_eq!(status, 401, "{path} anonymously"),
                Access::ApiKey => unreachable!("handled above"),
            }
            // the response head is enough: an event stream never ends
            let as_viewer = viewer.get(url(&path)).send().await.unwrap().status().as_u16();
            assert_eq!(as_viewer, 200, "{path} as a viewer");
        } else {
            let foreign =
                admin.post(url(&path)).header("origin", "https://evil.example").send().await.unwrap();
            assert_eq!(foreign.status().as_u16(), 403, "{path}: cross-origin");
        }
    }
    assert_eq!(anonymous.get(url("/login")).send().await.unwrap().status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_token_reads_metrics_without_a_session() {
    let (mut config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    config.metrics_token = Some("scrape-me-please".into());
    let app = TestApp::start(&config).await;
    let anonymous = browser();
    let metrics = format!("{}/metrics", app.address);
    let with =
        |token: &str| anonymous.get(&metrics).header("authorization", format!("Bearer {token}")).send();
    assert_eq!(with("scrape-me-please").await.unwrap().status().as_u16(), 200);
    assert_eq!(with("guess").await.unwrap().status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_rotate_sessions_fail_slowly_and_are_limited() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let url = |path: &str| format!("{}{path}", app.address);
    let login = |client: &reqwest::Client, name: &str, password: &str| {
        client.post(url("/login")).form(&[("username", name), ("password", password), ("next", "/")]).send()
    };

    // rotation: a second login gives a new session and ends the first
    let client = browser();
    let first = login(&client, "tester", TEST_PASSWORD).await.unwrap();
    let first_cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(first_cookie.starts_with("__Host-sti_session="), "{first_cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(first_cookie.contains(part), "{part} in {first_cookie}");
    }
    assert!(
        !first_cookie.contains("Max-Age") && !first_cookie.contains("Expires"),
        "a browser-session cookie"
    );
    let second = login(&client, "tester", TEST_PASSWORD).await.unwrap();
    let second_cookie = second.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert_ne!(first_cookie, second_cookie);
    let old_id = first_cookie.split(';').next().unwrap().to_owned();
    let stale = browser().get(url("/")).header("cookie", old_id).send().await.unwrap();
    assert_eq!(stale.status().as_u16(), 303, "the first session ended");

    // disabling a user ends their session at once
    let control = open(&config.control, Schema::Control).await;
    let leaver = app.sign_in_new(&control, "leaver", Role::Operator).await;
    assert_eq!(leaver.get(url("/")).send().await.unwrap().status().as_u16(), 200);
    users::disable(&control, &Username::parse("leaver").unwrap(), "test").await.unwrap();
    assert_eq!(leaver.get(url("/")).send().await.unwrap().status().as_u16(), 303);

    // a wrong password goes back to the form; the second in a row delays the next check of that
    // user, even with the right password
    let stranger = browser();
    for _ in 0..2 {
        let failed = login(&stranger, "tester", "not the password").await.unwrap();
        assert_eq!(failed.status().as_u16(), 303);
        assert!(failed.headers()["location"].to_str().unwrap().starts_with("/login?error=1"));
    }
    let delayed = login(&stranger, "tester", TEST_PASSWORD).await.unwrap();
    assert_eq!(delayed.status().as_u16(), 429);
    let retry: u64 = delayed.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // a browser is sent back to the form, which says how long to wait
    let page = stranger
        .post(url("/login"))
        .header("accept", "text/html,application/xhtml+xml")
        .form(&[("username", "tester"), ("password", TEST_PASSWORD), ("next", "/audit")])
        .send()
        .await
        .unwrap();
    let location = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/login?error=wait&retry=") && location.ends_with("&next=%2Faudit"),
        "{location}"
    );
    let form = browser().get(url(&location)).send().await.unwrap().text().await.unwrap();
    assert!(form.contains("Too many wrong passwords: wait"), "{form}");
    // an address that made its 30 wrong guesses in the window is refused for any user
    sqlx::query("update login_attempts set failures = 30 where key = 'addr:127.0.0.1'")
        .execute(control.pool())
        .await
        .unwrap();
    let same_address = login(&browser(), "leaver", TEST_PASSWORD).await.unwrap();
    assert_eq!(same_address.status().as_u16(), 429, "the address is limited too");
    let retry: u64 = same_address.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry));

    // sign-ins, failed, refused and successful, are audited with the name tried and the address
    let audited = sti_rollout::db::audit::recent(&control, None, 100).await.unwrap();
    let count = |action: &str| audited.iter().filter(|e| e.action == action).count();
    assert_eq!(count("login.failed"), 2);
    assert_eq!(count("login.throttled"), 2, "the first for the user (not the second), one for the address");
    assert!(count("login") >= 4, "{audited:?}");
    let failed = audited.iter().find(|e| e.action == "login.failed").unwrap();
    assert_eq!(failed.actor, "anonymous");
    assert!(failed.after.as_deref().unwrap().contains(r#""username":"tester""#));
    assert!(failed.after.as_deref().unwrap().contains(r#""address":"127.0.0.1""#));
    assert!(!audited.iter().any(|e| format!("{e:?}").contains("not the password")), "no password is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_creates_an_admin_whose_password_only_the_owner_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let file = config.data_dir.join("initial-admin-password");
    let password = std::fs::read_to_string(&file).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let password = password.trim_end();
    assert_eq!(password.len(), 24);

    let client = browser();
    let response = client
        .post(format!("{}/login", app.address))
        .form(&[("username", "admin"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/account?first=1", "a generated password is changed first");

    drop(app);
    let _again = TestApp::start(&config).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim_end(), password, "never created twice");
    let control = open(&config.control, Schema::Control).await;
    let admins = users::list(&control).await.unwrap().into_iter().filter(|u| u.role == Role::Admin).count();
    assert_eq!(admins, 1);
}
