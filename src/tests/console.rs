//! The operator console over HTTP, as the browser uses it: server functions start, watch, pause,
//! verify and roll back runs; the event stream pushes every change, whoever made it; the
//! environment page renders them; every action lands in the audit log with its user.

use crate::support::{call, cli, config, config_vars, open, testid_text, Backend, TestApp};
use std::time::{Duration, Instant};
use sti_rollout::db::{audit, Schema};
use sti_rollout::domain::access::Role;
use sti_rollout::domain::live::{DeadLetterPage, LiveView, VerificationView};
use sti_rollout::domain::run::RunState;

/// Reads `/events/{env}` until an update satisfies `done`; every update seen, in order.
async fn watch(app: &TestApp, env: &str, done: impl Fn(&LiveView) -> bool) -> Vec<LiveView> {
    let mut response = app.client.get(format!("{}/events/{env}", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut buffer, mut seen) = (String::new(), Vec::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk =
            tokio::time::timeout(left, response.chunk()).await.expect("no update in time").unwrap().unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if !event.lines().any(|l| l == "event: live") {
                continue;
            }
            let data: String = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            let view: LiveView = serde_json::from_str(&data).unwrap();
            let finished = done(&view);
            seen.push(view);
            if finished {
                return seen;
            }
        }
    }
}

fn finished(view: &LiveView) -> bool {
    view.run.as_ref().is_some_and(|r| r.state.is_final())
}

async fn an_operator_runs_the_whole_cycle_from_the_console(backend: Backend) {
    let (config, _dir) = config(backend, [2_000, 10, 10]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;

    // a dry-run first: it reports and writes nothing
    let (status, body) = call(&app, &app.client, "dry_run", "env=dev&chunk_size=250").await;
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["would_reject"], 10, "0.5% of 2000 rows are dirty");

    // bad input is refused with 400, before anything runs
    let (status, body) =
        call(&app, &app.client, "start_run", "env=dev&kind=backfill&chunk_size=0&pause_ms=0&confirm=").await;
    assert_eq!(status, 400, "{body}");

    // start: the call returns at once with the run's id; the stream follows it to the end
    let (status, body) =
        call(&app, &app.client, "start_run", "env=dev&kind=backfill&chunk_size=100&pause_ms=20&confirm=")
            .await;
    assert_eq!(status, 200, "{body}");
    let run_id: i64 = serde_json::from_str(&body).unwrap();
    let updates = watch(&app, "dev", finished).await;
    let last = updates.last().unwrap();
    let run = last.run.as_ref().unwrap();
    assert_eq!((run.id, run.state), (run_id, RunState::Completed));
    assert_eq!(run.created(), 1_990);
    assert_eq!(run.errors, 10);
    assert_eq!(run.started_by, "user:tester");
    assert!(updates.len() >= 3, "the stream pushed progress, not only the end: {}", updates.len());
    assert!(
        !last.chart.is_empty() && last.chart.len() <= 20,
        "{} chart points for 20 chunks",
        last.chart.len()
    );
    assert_eq!(last.chart.last().unwrap().school + last.chart.last().unwrap().self_study, 1_990);
    assert_eq!(last.history[0].id, run_id);

    // pausing a finished run is a conflict
    let (status, body) =
        call(&app, &app.client, "control_run", &format!("env=dev&run_id={run_id}&request=pause")).await;
    assert_eq!(status, 409, "{body}");

    // the page renders the finished run on the server
    let (status, html) = app.get("/env/dev").await;
    assert_eq!(status, 200);
    assert_eq!(testid_text(&html, "run-state"), "completed");
    assert_ne!(testid_text(&html, "school"), "0");
    assert!(
        html.contains("data-testid=\"chart-rows\"") && html.contains("<svg"),
        "charts drawn on the server"
    );
    assert!(
        html.contains("data-testid=\"start\"") || html.contains("data-testid=\"dry-run\""),
        "operator controls"
    );

    // rejected rows: the first page comes with the page, later ones are read on demand
    assert_eq!(testid_text(&html, "dead-letters-page"), "page 1 of 1 · 10 rows");
    assert_eq!(html.matches("<code>").count(), 10, "ten rejected rows in the server-rendered table");
    assert!(
        html.contains("__RESOLVED_RESOURCES=[];") && !html.contains("__RESOLVED_RESOURCES["),
        "the island's props carry the page's data; no resource is serialized beside them"
    );
    let (status, body) = call(&app, &app.client, "dead_letters", "env=dev&page=1").await;
    assert_eq!(status, 200, "{body}");
    let page: DeadLetterPage = serde_json::from_str(&body).unwrap();
    assert_eq!((page.total, page.rows.len()), (10, 10));
    let reason = page.rows[0].reason.clone();
    let (_, body) = call(&app, &app.client, "dead_letters", &format!("env=dev&page=1&reason={reason}")).await;
    let filtered: DeadLetterPage = serde_json::from_str(&body).unwrap();
    assert!(filtered.total >= 1 && filtered.rows.iter().all(|d| d.reason == reason));
    let (status, csv) = app.get("/env/dev/dead-letters.csv").await;
    assert_eq!(status, 200);
    assert_eq!(csv.lines().count(), 11, "a header and ten rows: {csv}");
    let (status, ledger) = app.get(&format!("/env/dev/runs/{run_id}/ledger.csv")).await;
    assert_eq!((status, ledger.lines().count()), (200, 21), "a header and twenty chunks");

    // verify: every range matches, and the result is pushed
    let (status, body) = call(&app, &app.client, "verify_environment", "env=dev").await;
    assert_eq!(status, 200, "{body}");
    let verification: VerificationView = serde_json::from_str(&body).unwrap();
    assert!(verification.ok && verification.mismatched_ids.is_empty());
    let pushed = watch(&app, "dev", |v| v.verification.is_some()).await;
    assert_eq!(pushed.last().unwrap().verification.as_ref().unwrap().id, verification.id);

    // roll back, dry-run first
    let (status, body) = call(&app, &app.client, "plan_rollback", "env=dev").await;
    assert_eq!(status, 200, "{body}");
    let (plan, refused): (serde_json::Value, Option<String>) = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (plan["school"].as_i64().unwrap() + plan["self_study"].as_i64().unwrap(), refused),
        (1_990, None)
    );
    let (status, body) =
        call(&app, &app.client, "start_run", "env=dev&kind=rollback&chunk_size=500&pause_ms=0&confirm=")
            .await;
    assert_eq!(status, 200, "{body}");
    let rollback_id: i64 = serde_json::from_str(&body).unwrap();
    let updates =
        watch(&app, "dev", |v| v.run.as_ref().is_some_and(|r| r.id == rollback_id && r.state.is_final()))
            .await;
    let rollback = updates.last().unwrap().run.clone().unwrap();
    assert_eq!((rollback.state, rollback.created()), (RunState::Completed, 1_990));

    // prod needs its name typed, on the server too
    let (status, body) =
        call(&app, &app.client, "start_run", "env=prod&kind=backfill&chunk_size=1&pause_ms=200&confirm=")
            .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("type 'prod'"), "{body}");
    // and its gate is closed (staging is not verified): the engine refuses, saying why
    let (status, body) =
        call(&app, &app.client, "start_run", "env=prod&kind=backfill&chunk_size=1&pause_ms=200&confirm=prod")
            .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("staging must be verified first"), "{body}");
    let with_override =
        "env=prod&kind=backfill&chunk_size=1&pause_ms=200&confirm=prod&override_gate=rehearsal+on+demo+data";
    let (status, body) = call(&app, &app.client, "start_run", with_override).await;
    assert_eq!(status, 403, "only an admin overrides a gate: {body}");
    let boss = app.sign_in_new(&control, "boss", Role::Admin).await;
    let (status, body) = call(&app, &boss, "start_run", with_override).await;
    assert_eq!(status, 200, "{body}");
    // a second operator clicking start too: the lease refuses it, nothing is lost
    let second = app.sign_in_new(&control, "second", Role::Operator).await;
    let (status, body) =
        call(&app, &second, "start_run", "env=prod&kind=rollback&chunk_size=1&pause_ms=0&confirm=prod").await;
    assert_eq!(status, 409, "{body}");

    // pause and resume from the console act at the next chunk boundary
    let running =
        watch(&app, "prod", |v| v.run.as_ref().is_some_and(|r| r.state == RunState::Running && r.chunks > 0))
            .await;
    let id = running.last().unwrap().run.as_ref().unwrap().id;
    let (status, body) =
        call(&app, &app.client, "control_run", &format!("env=prod&run_id={id}&request=pause")).await;
    assert_eq!(status, 200, "{body}");
    let paused = watch(&app, "prod", |v| v.run.as_ref().is_some_and(|r| r.state == RunState::Paused)).await;
    let at = paused.last().unwrap().run.as_ref().unwrap().checkpoint;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, html) = app.get("/env/prod").await;
    assert_eq!(testid_text(&html, "run-state"), "paused");
    let still: LiveView =
        sti_rollout::db::live::read(&control, sti_rollout::domain::environment::Environment::Prod)
            .await
            .unwrap();
    assert_eq!(still.run.unwrap().checkpoint, at, "a paused run does not move");
    let (status, _) =
        call(&app, &app.client, "control_run", &format!("env=prod&run_id={id}&request=resume")).await;
    assert_eq!(status, 200);
    watch(&app, "prod", |v| v.run.as_ref().is_some_and(|r| r.checkpoint > at)).await;

    // emergency stop: the run cancels and the flag goes off, with the reason in the audit log
    let (status, body) = call(&app, &app.client, "emergency_stop", "env=prod&confirm=prod&reason=").await;
    assert_eq!(status, 400, "a reason is required: {body}");
    let (status, body) =
        call(&app, &app.client, "emergency_stop", "env=prod&confirm=prod&reason=errors+in+prod").await;
    assert_eq!(status, 200, "{body}");
    let stopped = watch(&app, "prod", finished).await;
    let last = stopped.last().unwrap();
    assert_eq!((last.run.as_ref().unwrap().state, last.flag_on), (RunState::Cancelled, false));

    let entries = audit::recent(&control, None, 100).await.unwrap();
    let by_tester =
        |action: &str| entries.iter().filter(|e| e.action == action && e.actor == "user:tester").count();
    assert_eq!(by_tester("run.start"), 2, "{entries:#?}");
    let overridden = entries.iter().find(|e| e.action == "gate.override").unwrap();
    assert_eq!(
        (overridden.actor.as_str(), overridden.reason.as_deref()),
        ("user:boss", Some("rehearsal on demo data"))
    );
    assert_eq!(
        (by_tester("dry_run"), by_tester("verify"), by_tester("run.pause"), by_tester("run.resume")),
        (1, 1, 1, 1)
    );
    let stop = entries.iter().find(|e| e.action == "emergency_stop").unwrap();
    assert_eq!((stop.environment.as_deref(), stop.reason.as_deref()), (Some("prod"), Some("errors in prod")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_operator_runs_the_whole_cycle_from_the_console() {
    an_operator_runs_the_whole_cycle_from_the_console(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_operator_runs_the_whole_cycle_from_the_console() {
    an_operator_runs_the_whole_cycle_from_the_console(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_cli_drives_is_paused_and_resumed_from_the_console() {
    let (config, _dir) = config(Backend::Sqlite, [10, 10, 2_000]).await;
    let app = TestApp::start(&config).await;
    let mut runner = std::process::Command::new(env!("CARGO_BIN_EXE_sti-rollout"))
        .args(["backfill", "--env", "prod", "--chunk", "20", "--pause-ms", "50", "--override-gate", "test"])
        .envs(config_vars(&config))
        .env("STI_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running =
        watch(&app, "prod", |v| v.run.as_ref().is_some_and(|r| r.state == RunState::Running && r.chunks > 0))
            .await;
    let id = running.last().unwrap().run.as_ref().unwrap().id;
    let (status, body) =
        call(&app, &app.client, "control_run", &format!("env=prod&run_id={id}&request=pause")).await;
    assert_eq!(status, 200, "{body}");
    let paused = watch(&app, "prod", |v| v.run.as_ref().is_some_and(|r| r.state == RunState::Paused)).await;
    assert!(paused.last().unwrap().run.as_ref().unwrap().started_by.starts_with("cli:"));
    let (status, _) =
        call(&app, &app.client, "control_run", &format!("env=prod&run_id={id}&request=resume")).await;
    assert_eq!(status, 200);
    let done = watch(&app, "prod", finished).await;
    assert_eq!(done.last().unwrap().run.as_ref().unwrap().state, RunState::Completed);
    assert!(runner.wait().unwrap().success(), "the CLI run ended well after its pause");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_from_the_cli_is_pushed_to_the_console() {
    let (config, _dir) = config(Backend::Sqlite, [500, 10, 10]).await;
    let app = TestApp::start(&config).await;
    let vars = config_vars(&config);
    let closed = cli(&["backfill", "--env", "staging", "--chunk", "1"], &vars);
    assert_eq!(closed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&closed.stderr).into_owned();
    assert!(said.contains("dev must be verified first"), "the CLI says why the gate is closed: {said}");
    let done = cli(&["backfill", "--env", "staging", "--chunk", "1", "--override-gate", "test data"], &vars);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let updates = watch(&app, "staging", finished).await;
    let run = updates.last().unwrap().run.clone().unwrap();
    assert!(run.started_by.starts_with("cli:"), "{}", run.started_by);
    assert_eq!(run.chunks, 10);
    let (status, _) = app.get("/events/nowhere").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_follow_the_rollout_and_gates_open_in_order() {
    use sti_rollout::domain::phases::{Phase, PhaseStatus};
    let (config, _dir) = config(Backend::Sqlite, [500, 10, 10]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let viewer = app.sign_in_new(&control, "stakeholder", Role::Viewer).await;
    let boss = app.sign_in_new(&control, "boss", Role::Admin).await;
    let live = |env: &'static str| {
        let control = control.clone();
        async move {
            let env = sti_rollout::domain::environment::Environment::parse(env).unwrap();
            sti_rollout::db::live::read(&control, env).await.unwrap()
        }
    };
    let status =
        |view: &LiveView, phase: Phase| view.phases.iter().find(|(p, _)| *p == phase).unwrap().1.clone();

    let staging = live("staging").await;
    assert_eq!(staging.gate_closed.as_deref(), Some("dev must be verified first (it is pending)"));
    // the flag stays off until the environment is verified
    let (status_code, body) =
        call(&app, &app.client, "set_flag", "env=dev&enabled=true&confirm=&reason=").await;
    assert_eq!(status_code, 409, "{body}");
    assert!(body.contains("dev must be backfilled and verified first"), "{body}");

    let (code, _) = call(&app, &app.client, "dry_run", "env=dev&chunk_size=100").await;
    assert_eq!(code, 200);
    let (code, _) =
        call(&app, &app.client, "start_run", "env=dev&kind=backfill&chunk_size=100&pause_ms=0&confirm=")
            .await;
    assert_eq!(code, 200);
    watch(&app, "dev", finished).await;
    let (code, _) = call(&app, &app.client, "verify_environment", "env=dev").await;
    assert_eq!(code, 200);
    let dev = live("dev").await;
    assert_eq!(
        dev.phases.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["done", "done", "done", "pending", "pending", "pending"]
    );
    assert!(
        live("staging").await.gate_closed.unwrap().contains("ENABLE_STI on"),
        "staging also needs dev's flag on"
    );

    let (code, body) =
        call(&app, &app.client, "set_flag", "env=dev&enabled=true&confirm=&reason=dev+verified").await;
    assert_eq!(code, 200, "{body}");
    let dev = live("dev").await;
    assert!(dev.flag_on);
    assert_eq!(status(&dev, Phase::FlagOn), PhaseStatus::Done);
    assert_eq!(status(&dev, Phase::SignOff), PhaseStatus::Active);
    assert_eq!(
        (dev.flag_history[0].enabled, dev.flag_history[0].reason.as_deref()),
        (true, Some("dev verified"))
    );
    assert_eq!(live("staging").await.gate_closed, None, "staging's gate opened");
    assert!(live("prod").await.gate_closed.unwrap().contains("staging must be verified first"));

    // the checklist: each item is signed by its owner role or above; failing needs a reason
    let items = sti_rollout::db::checklist::items(&control).await.unwrap();
    assert_eq!(items.len(), 9, "seeded from the playbook");
    let operator_item = items.iter().find(|i| i.owner_role == Role::Operator).unwrap().id;
    let viewer_item = items.iter().find(|i| i.owner_role == Role::Viewer).unwrap().id;
    let sign = |item: i64, state: &str, comment: &str| {
        format!("env=dev&item_id={item}&state={state}&comment={comment}&evidence_url=https://grafana.example/d/sti")
    };
    let (code, _) = call(&app, &viewer, "sign_checklist", &sign(operator_item, "pass", "")).await;
    assert_eq!(code, 403, "a viewer cannot sign an operator's item");
    let (code, _) = call(&app, &viewer, "sign_checklist", &sign(viewer_item, "fail", "")).await;
    assert_eq!(code, 400, "failing needs a reason");
    let (code, _) =
        call(&app, &viewer, "sign_checklist", &sign(viewer_item, "fail", "numbers+look+off")).await;
    assert_eq!(code, 200);
    assert!(matches!(status(&live("dev").await, Phase::SignOff), PhaseStatus::Blocked(_)));
    for item in &items {
        let (code, body) = call(&app, &boss, "sign_checklist", &sign(item.id, "pass", "")).await;
        assert_eq!(code, 200, "{body}");
    }
    let dev = live("dev").await;
    assert!(dev.phases.iter().all(|(_, s)| *s == PhaseStatus::Done), "{:?}", dev.phases);
    let superseded = dev.checklist.iter().find(|e| e.item.id == viewer_item).unwrap();
    assert_eq!(
        (superseded.signoffs, superseded.latest.as_ref().unwrap().signed_by.as_str()),
        (2, "user:boss")
    );

    // turning the flag off is the quick rollback: always allowed, and the phase says so
    let (code, _) = call(&app, &app.client, "set_flag", "env=dev&enabled=false&confirm=&reason=errors").await;
    assert_eq!(code, 200);
    assert_eq!(status(&live("dev").await, Phase::FlagOn), PhaseStatus::RolledBack);
    let (code, html) = app.get("/").await;
    assert_eq!(code, 200);
    assert!(html.contains("data-testid=\"phase-matrix\""), "the overview shows the phases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_change_the_checklist_template_from_the_cli_and_signoffs_survive() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let vars = config_vars(&config);
    let control = open(&config.control, Schema::Control).await;
    let (code, _) =
        call(&app, &app.client, "sign_checklist", "env=dev&item_id=4&state=pass&comment=&evidence_url=")
            .await;
    assert_eq!(code, 200);
    let added = cli(
        &["checklist", "add", "--title", "Runbook reviewed by on-call", "--owner-role", "operator"],
        &vars,
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(cli(&["checklist", "retire", "--id", "4"], &vars).status.success());
    let again = cli(&["checklist", "retire", "--id", "4"], &vars);
    assert_eq!(again.status.code(), Some(1));
    let bad = cli(&["checklist", "add", "--title", "x", "--owner-role", "boss"], &vars);
    assert_eq!(bad.status.code(), Some(2));
    let items = sti_rollout::db::checklist::items(&control).await.unwrap();
    assert_eq!(items.len(), 9, "one added, one retired");
    assert_eq!(items.last().unwrap().title, "Runbook reviewed by on-call");
    let kept: i64 = sqlx::query_scalar("select count(*) from checklist_signoffs where item_id = 4")
        .fetch_one(control.pool())
        .await
        .unwrap();
    assert_eq!(kept, 1, "the retired item's sign-off stays");
    let audited = audit::recent(&control, None, 20).await.unwrap();
    assert!(audited.iter().any(|e| e.action == "checklist.add_item" && e.actor.starts_with("cli:")));
    assert!(audited.iter().any(|e| e.action == "checklist.retire_item"));
    assert!(audited.iter().any(|e| e.action == "checklist.sign" && e.actor == "user:tester"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_filtered_paged_and_exported() {
    let (config, _dir) = config(Backend::Sqlite, [100, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let (code, _) = call(&app, &app.client, "dry_run", "env=dev&chunk_size=50").await;
    assert_eq!(code, 200);
    let (code, _) =
        call(&app, &app.client, "emergency_stop", "env=staging&confirm=&reason=drill,+with+a+comma").await;
    assert_eq!(code, 200);
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let (code, body) = call(app, &app.client, "audit_log", query).await;
            assert_eq!(code, 200, "{body}");
            serde_json::from_str::<sti_rollout::domain::audit::AuditPage>(&body).unwrap()
        }
    };
    let all = page("env=&actor=&action=&from=&to=&page=1").await;
    assert!(all.total >= 3, "a sign-in, a dry-run, an emergency stop: {all:?}");
    assert!(all.entries.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let staging = page("env=staging&actor=&action=&from=&to=&page=1").await;
    assert_eq!(staging.entries.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["emergency_stop"]);
    let by_name = page("env=&actor=tester&action=dry_run&from=&to=&page=1").await;
    assert_eq!((by_name.total, by_name.entries[0].actor.as_str()), (1, "user:tester"));
    let prefix = page("env=&actor=&action=login.&from=&to=&page=1").await;
    assert_eq!(prefix.total, 0, "no failed logins here; 'login' itself does not match the prefix 'login.'");
    let future = page("env=&actor=&action=&from=2999-01-01&to=&page=1").await;
    assert_eq!(future.total, 0);
    let (code, body) =
        call(&app, &app.client, "audit_log", "env=&actor=&action=&from=27/11/2026&to=&page=1").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("from must be a date like 2026-11-27"), "{body}");

    let (code, csv) = app.get("/audit.csv?env=staging").await;
    assert_eq!(code, 200);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("\"drill, with a comma\""), "quoted as CSV: {csv}");
    let (code, json) = app.get("/audit.json?action=dry_run").await;
    assert_eq!(code, 200);
    let exported: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 1);
    let (code, _) = app.get("/audit.csv?to=never").await;
    assert_eq!(code, 400);
    let (code, html) = app.get("/audit").await;
    assert_eq!(code, 200);
    assert!(html.contains("data-testid=\"audit-entries\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_page_lists_its_emergency_contacts_from_the_configuration() {
    use sti_rollout::domain::environment::Environment;
    use sti_rollout::domain::live::Contact;
    let (mut config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    *config.contacts.get_mut(Environment::Prod) = vec![
        Contact {
            name: "Ana Lima".into(),
            role: "on-call engineer".into(),
            reach: "+351 900 000 001".into(),
        },
        Contact { name: "Bo Berg".into(), role: "database owner".into(), reach: "bo@example.org".into() },
    ];
    let app = TestApp::start(&config).await;
    let (code, prod) = app.get("/env/prod").await;
    assert_eq!(code, 200);
    let (ana, bo) = (prod.find("Ana Lima").unwrap(), prod.find("Bo Berg").unwrap());
    assert!(ana < bo, "in escalation order");
    let (_, dev) = app.get("/env/dev").await;
    assert!(dev.contains("None configured for this environment"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_page_shows_its_run_when_its_rejected_rows_cannot_be_read() {
    use sti_rollout::domain::environment::Environment;
    let (config, _dir) = config(Backend::Sqlite, [10, 10, 10]).await;
    let app = TestApp::start(&config).await;
    let (_, html) = app.get("/env/dev").await;
    assert!(html.contains(r#"data-testid="dead-letters-empty""#), "no rejected rows yet");

    let dev = open(&config.targets[Environment::Dev].url, Schema::Target).await;
    sqlx::query("drop table sti_backfill_dead_letters").execute(dev.pool()).await.unwrap();
    let (status, html) = app.get("/env/dev").await;
    assert_eq!(status, 200, "the page is served: {html}");
    assert!(html.contains(r#"data-testid="flag""#) && html.contains(r#"data-testid="contacts""#));
    assert!(!html.contains(r#"data-testid="dead-letters""#), "no rejected rows shown");
    assert!(html.contains("Could not load this view.") && html.contains("dev: "), "the card says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_d_day_is_set_from_the_cli_and_by_admins_and_the_overview_places_each_environment() {
    let (config, _dir) = config(Backend::Sqlite, [60, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let vars = config_vars(&config);
    let control = open(&config.control, Schema::Control).await;
    let today = sti_rollout::domain::calendar::Day::from_epoch_ms(sti_rollout::db::now_ms());

    let (_, html) = app.get("/").await;
    assert!(testid_text(&html, "d-day").starts_with("No D-day is set yet"));
    assert!(html.contains(r#"data-testid="gate-backfill-staging" class="gate gate-closed""#));
    assert!(html.contains("closed: dev must be verified first"));
    let listed = cli(&["timeline"], &vars);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("No D-day is set"));

    // D-day in four days: dev's window (D-7..D-5) closed yesterday and dev has not started
    let d_day = today.plus(4).to_string();
    let set = cli(&["timeline", "--set", &d_day, "--reason", "kick-off moved"], &vars);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let printed = String::from_utf8_lossy(&set.stdout).into_owned();
    assert!(printed.contains(&format!("D-day {d_day}")), "{printed}");
    assert!(printed.contains("Late: its window closed 1 day ago"), "{printed}");
    let (_, html) = app.get("/").await;
    assert_eq!(testid_text(&html, "schedule-dev"), "Late: its window closed 1 day ago");
    assert_eq!(testid_text(&html, "schedule-staging"), "At risk: dev is late and gates this environment");
    assert!(testid_text(&html, "d-day").contains("set by cli:"));

    // dev starts today (a dry-run): still late, but its start is on the calendar
    let (code, _) = call(&app, &app.client, "dry_run", "env=dev&chunk_size=50").await;
    assert_eq!(code, 200);
    let (_, html) = app.get("/").await;
    assert!(html.contains(&format!("Started {}", today.short())));

    // admins move it; operators may not; nonsense is a 400 and changes nothing
    let admin = app.sign_in_new(&control, "boss", Role::Admin).await;
    let later = today.plus(7).to_string();
    let (code, body) = call(&app, &app.client, "set_d_day", &format!("date={later}&reason=")).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = call(&app, &admin, "set_d_day", "date=2026-02-30&reason=").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("YYYY-MM-DD"), "{body}");
    let (code, body) = call(&app, &admin, "set_d_day", &format!("date={later}&reason=vendor+freeze")).await;
    assert_eq!(code, 200, "{body}");
    let (_, html) = app.get("/").await;
    assert!(testid_text(&html, "d-day").contains(&later));
    assert_eq!(
        testid_text(&html, "schedule-dev"),
        "On track",
        "dev's window (D-7..D-5) opens today, and dev started"
    );

    let changes: Vec<_> = audit::recent(&control, None, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "timeline.d_day")
        .collect();
    assert_eq!(changes.len(), 2, "the refused and the invalid changes are not recorded");
    assert_eq!(changes[0].actor, "user:boss");
    assert_eq!(changes[0].reason.as_deref(), Some("vendor freeze"));
    assert!(changes[0].before.as_deref().unwrap().contains(&d_day));
    assert!(changes[1].actor.starts_with("cli:"));

    // clearing brings back "not set" (no config file D-day here)
    assert!(cli(&["timeline", "--clear"], &vars).status.success());
    let (_, html) = app.get("/").await;
    assert!(testid_text(&html, "d-day").starts_with("No D-day is set yet"));
    let bad = cli(&["timeline", "--set", "soon"], &vars);
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_hears_of_a_change_made_from_the_cli() {
    let (config, _dir) = config(Backend::Sqlite, [10, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let vars = config_vars(&config);
    let mut stream = app.client.get(format!("{}/events", app.address)).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));

    // nothing changed yet: nothing is sent (a keep-alive comment at most)
    let quiet = tokio::time::timeout(Duration::from_millis(2500), stream.chunk()).await;
    if let Ok(chunk) = quiet {
        let text = String::from_utf8_lossy(&chunk.unwrap().unwrap()).into_owned();
        assert!(!text.contains("event: changed"), "{text}");
    }

    let set = cli(&["timeline", "--set", "2030-01-15"], &vars);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.contains("event: changed") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .expect("no change event in time")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_edit_the_checklist_template_in_the_console() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let app = TestApp::start(&config).await;
    let control = open(&config.control, Schema::Control).await;
    let admin = app.sign_in_new(&control, "boss", Role::Admin).await;

    let (code, _) =
        call(&app, &app.client, "add_checklist_item", "title=Pager+tested&owner_role=operator").await;
    assert_eq!(code, 403, "operators do not edit the template");
    let (code, body) = call(&app, &admin, "add_checklist_item", "title=+++&owner_role=operator").await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = call(&app, &admin, "add_checklist_item", "title=Pager+tested&owner_role=boss").await;
    assert_eq!(code, 400, "{body}");
    let (code, body) =
        call(&app, &admin, "add_checklist_item", "title=Pager+tested&owner_role=operator").await;
    assert_eq!(code, 200, "{body}");
    let id: i64 = body.trim().parse().unwrap();

    let (code, _) = call(
        &app,
        &app.client,
        "sign_checklist",
        &format!("env=dev&item_id={id}&state=pass&comment=&evidence_url="),
    )
    .await;
    assert_eq!(code, 200, "the operator signs the new item");
    let (code, body) = call(&app, &admin, "retire_checklist_item", &format!("id={id}")).await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = call(&app, &admin, "retire_checklist_item", &format!("id={id}")).await;
    assert_eq!(code, 404, "already retired");

    let items = sti_rollout::db::checklist::items(&control).await.unwrap();
    assert!(items.iter().all(|i| i.id != id), "retired items leave the template");
    let kept: i64 = sqlx::query_scalar("select count(*) from checklist_signoffs where item_id = $1")
        .bind(id)
        .fetch_one(control.pool())
        .await
        .unwrap();
    assert_eq!(kept, 1, "its sign-off stays");
    let audited = audit::recent(&control, None, 20).await.unwrap();
    assert!(audited.iter().any(|e| e.action == "checklist.add_item" && e.actor == "user:boss"));
    assert!(audited.iter().any(|e| e.action == "checklist.retire_item" && e.actor == "user:boss"));
    assert_eq!(
        audited.iter().filter(|e| e.action == "checklist.add_item").count(),
        1,
        "refused adds are not recorded"
    );
}
