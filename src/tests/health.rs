//! What the console tells its people: a run's health, said the same on the overview, the
//! environment page, `/metrics` and the CLI (a run whose runner stopped beating is not "running",
//! well before its lease runs out); each environment's next step; the backfill forecast; a
//! verification that a later run made out of date.

use crate::engine_defects::exec;
use crate::engine_runs::{fixture, start, Fixture, DEV};
use crate::support::{cli, config_vars, testid_text, Backend, TestApp};
use sti_rollout::engine::{backfill, mirror, runs};

/// A live backfill whose runner last beat 20 s ago on a 30 s lease (10 s left), in the target
/// and in the mirror alike, as a runner killed 20 s ago leaves it.
async fn a_run_whose_runner_went_silent(f: &Fixture) -> i64 {
    let held = backfill::begin(&f.target, &start(100, 30_000)).await.unwrap();
    let now = sti_rollout::db::now_ms();
    exec(
        f,
        &format!(
            "update sti_backfill_runs set updated_at = {}, lease_expires_at = {} where id = {}",
            now - 25_000,
            now + 10_000,
            held.run.id
        ),
    )
    .await;
    let run = runs::get(&f.target, held.run.id).await.unwrap();
    assert_eq!(run.lease_ms, Some(30_000), "the run keeps its lease's length");
    mirror::record(Some(&f.control), DEV, &run).await;
    run.id
}

async fn a_silent_runner_is_lost_everywhere_before_its_lease_runs_out(backend: Backend) {
    let f = fixture(backend, 500).await;
    let app = TestApp::start(&f.config).await;
    let id = a_run_whose_runner_went_silent(&f).await;

    let (_, html) = app.get("/").await;
    assert_eq!(testid_text(&html, "health-dev"), "runner lost");
    let why = testid_text(&html, "health-why-dev");
    assert!(
        why.starts_with("runner lost: last heard from 2") && why.contains("its lease runs out in"),
        "{why}"
    );

    let (_, html) = app.get("/env/dev").await;
    assert_eq!(testid_text(&html, "run-state"), "runner lost");
    assert!(testid_text(&html, "runner-gone").contains("last heard from"));
    assert_eq!(testid_text(&html, "eta"), "stale");
    assert_eq!(testid_text(&html, "rate"), "—", "no rate for a run that does not move");

    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("sti_backfill_run_health{environment=\"dev\",health=\"runner_lost\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sti_backfill_run_health{environment=\"dev\",health=\"running\"} 0"));

    let listed = cli(&["runs", "--env", "dev"], &config_vars(&f.config));
    let out = String::from_utf8_lossy(&listed.stdout);
    assert!(
        out.contains("runner lost") && out.contains(&format!("run #{id}: runner lost: last heard from")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_silent_runner_is_lost_everywhere_before_its_lease_runs_out() {
    a_silent_runner_is_lost_everywhere_before_its_lease_runs_out(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_silent_runner_is_lost_everywhere_before_its_lease_runs_out() {
    a_silent_runner_is_lost_everywhere_before_its_lease_runs_out(Backend::Postgres).await;
}

/// The next ~400 characters of the page from the element with `data-testid="id"` on.
fn element<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("data-testid=\"{id}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no element {marker} in the page"));
    let start = html[..start].rfind('<').unwrap_or(start);
    &html[start..(start + 400).min(html.len())]
}

async fn each_environment_says_its_next_step_and_offers_the_one_button_that_does_it(backend: Backend) {
    let f = fixture(backend, 500).await;
    let app = TestApp::start(&f.config).await;
    let (_, html) = app.get("/").await;
    assert!(element(&html, "next-dev").contains("Next: dry-run dev"), "{}", element(&html, "next-dev"));
    assert!(element(&html, "next-staging").contains("Next: dry-run staging"), "a dry-run needs no gate");

    crate::engine_runs::run_backfill(&f, 200).await;
    let (_, html) = app.get("/").await;
    assert!(element(&html, "next-dev").contains("Next: verify dev"), "{}", element(&html, "next-dev"));
    let (_, html) = app.get("/env/dev").await;
    assert_eq!(testid_text(&html, "next-step-line"), "Next: verify dev");
    assert!(element(&html, "next-action").contains(">Verify<"), "{}", element(&html, "next-action"));
    // after a completed backfill, starting another is not what the page pushes
    let tag = |id: &str| element(&html, id).split('>').next().unwrap_or_default().to_owned();
    assert!(tag("start").ends_with("class=\"button\""), "{}", tag("start"));
    assert!(tag("verify").ends_with("class=\"button button-primary\""), "{}", tag("verify"));

    sti_rollout::engine::verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    let (_, html) = app.get("/env/dev").await;
    assert_eq!(testid_text(&html, "next-step-line"), "Next: turn ENABLE_STI on in dev");
    let (_, html) = app.get("/").await;
    // staging waits for dev's flag: that gate holds it back; dev's own flag gate is open, so unlisted
    assert!(
        element(&html, "gate-backfill-staging").contains("closed: dev must be running with ENABLE_STI on")
    );
    assert!(!html.contains("data-testid=\"gate-flag-dev\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_each_environment_says_its_next_step_and_offers_the_one_button_that_does_it() {
    each_environment_says_its_next_step_and_offers_the_one_button_that_does_it(Backend::Sqlite).await;
}

async fn the_overview_forecasts_each_backfill_and_the_dry_run_counts_the_pacing(backend: Backend) {
    use sti_rollout::domain::pacing::Pacing;
    use sti_rollout::engine::dry_run::dry_run;
    let f = fixture(backend, 2_000).await;
    let app = TestApp::start(&f.config).await;
    let (_, html) = app.get("/").await;
    assert!(!html.contains("data-testid=\"forecast-dev\""), "nothing measured yet: no forecast");

    let quick =
        dry_run(&f.target, Some(&f.control), DEV, Pacing::parse(100, 0, None).unwrap(), None, &mut |_, _| {})
            .await
            .unwrap();
    let paced = dry_run(
        &f.target,
        Some(&f.control),
        DEV,
        Pacing::parse(100, 500, None).unwrap(),
        None,
        &mut |_, _| {},
    )
    .await
    .unwrap();
    // 2 000 rows in 20 chunks: 19 pauses of half a second on top of the copy
    assert!(
        (paced.estimated_live_seconds - quick.estimated_live_seconds - 9.5).abs() < 1e-6,
        "{quick:?} {paced:?}"
    );

    let done = crate::engine_runs::run_backfill(&f, 500).await;
    let (_, html) = app.get("/").await;
    assert!(
        !html.contains("data-testid=\"forecast-dev\""),
        "dev is backfilled: its rows left are rejected ones"
    );
    // staging is forecast from dev's measured rate and pacing
    let forecast = element(&html, "forecast-staging");
    assert!(
        forecast.contains("Backfill forecast: about ")
            && forecast.contains(&format!("from dev's backfill #{} at ", done.id))
            && forecast.contains("500-row chunks"),
        "{forecast}"
    );
    // a re-run skips what is copied, far faster than a copy: it measures nothing
    let rerun = crate::engine_runs::run_backfill(&f, 2_000).await;
    assert_eq!(rerun.created(), 0);
    let (_, html) = app.get("/").await;
    let forecast = element(&html, "forecast-staging");
    assert!(forecast.contains(&format!("from dev's backfill #{} at ", done.id)), "{forecast}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_overview_forecasts_each_backfill_and_the_dry_run_counts_the_pacing() {
    the_overview_forecasts_each_backfill_and_the_dry_run_counts_the_pacing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_overview_forecasts_each_backfill_and_the_dry_run_counts_the_pacing() {
    the_overview_forecasts_each_backfill_and_the_dry_run_counts_the_pacing(Backend::Postgres).await;
}

async fn a_verification_older_than_the_last_run_says_it_is_out_of_date(backend: Backend) {
    let f = fixture(backend, 500).await;
    let app = TestApp::start(&f.config).await;
    crate::engine_runs::run_backfill(&f, 200).await;
    sti_rollout::engine::verify::verify(&f.target, Some(&f.control), DEV, &mut |_, _| {}).await.unwrap();
    let (_, html) = app.get("/env/dev").await;
    assert!(
        !html.contains("data-testid=\"verification-outdated\""),
        "a verification after the run is current"
    );

    let held =
        sti_rollout::engine::rollback::begin(&f.target, &f.control, &start(200, 30_000)).await.unwrap();
    let rolled = backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    let (_, html) = app.get("/env/dev").await;
    assert_eq!(
        testid_text(&html, "verification-outdated"),
        format!("Out of date: rollback run #{} ended after this verification; verify again.", rolled.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_verification_older_than_the_last_run_says_it_is_out_of_date() {
    a_verification_older_than_the_last_run_says_it_is_out_of_date(Backend::Sqlite).await;
}

/// A row rejected by two runs is one rejected row seen in both (issue 29 #10): the page counts
/// project ids, filters by run, and the CSV has one line per id with readable times and the
/// legacy row's fields.
async fn a_row_rejected_by_two_runs_is_listed_once(backend: Backend) {
    use sti_rollout::domain::live::DeadLetterPage;
    let f = fixture(backend, 2_000).await;
    let app = TestApp::start(&f.config).await;
    let first = crate::engine_runs::run_backfill(&f, 500).await;
    let second = crate::engine_runs::run_backfill(&f, 500).await;
    assert!(first.errors > 0 && second.errors == first.errors, "{first:?} {second:?}");

    let (status, body) = crate::support::call(&app, &app.client, "dead_letters", "env=dev&page=1").await;
    assert_eq!(status, 200, "{body}");
    let page: DeadLetterPage = serde_json::from_str(&body).unwrap();
    assert_eq!(page.total, first.errors, "one row per project id, not per run");
    assert!(page.rows.iter().all(|d| d.runs == vec![first.id, second.id]), "{:?}", page.rows);
    assert_eq!(page.runs, vec![(second.id, second.errors), (first.id, first.errors)]);
    let (_, body) =
        crate::support::call(&app, &app.client, "dead_letters", &format!("env=dev&page=1&run={}", first.id))
            .await;
    let of_first: DeadLetterPage = serde_json::from_str(&body).unwrap();
    assert_eq!(of_first.total, first.errors);

    let (_, html) = app.get("/env/dev").await;
    assert!(html.contains(&format!("#{}, #{}", first.id, second.id)), "the table says which runs");
    let (status, csv) = app.get("/env/dev/dead-letters.csv").await;
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("project_id,reason,runs,first_seen,last_seen,legacy_row,title,owner_id,project_type,school_name,grade,pace,goal_date")
    );
    let line = lines.next().expect("a rejected row");
    assert_eq!(csv.lines().count() as i64, 1 + first.errors, "{csv}");
    let fields: Vec<&str> = line.split(',').collect();
    assert_eq!(fields[2], format!("{} {}", first.id, second.id), "{line}");
    assert!(fields[3].ends_with('Z') && fields[3].contains('T') && fields[3].len() == 20, "{line}");
    assert_eq!(fields[5], "present", "{line}");
    assert!(!fields[6].is_empty(), "the legacy row's title: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_row_rejected_by_two_runs_is_listed_once() {
    a_row_rejected_by_two_runs_is_listed_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_row_rejected_by_two_runs_is_listed_once() {
    a_row_rejected_by_two_runs_is_listed_once(Backend::Postgres).await;
}

/// The last dry-run stays on the page with who ran it and when, and a run keeps the forecast it
/// started with, set against what it took once it ends (issue 29 #3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_dry_run_stays_and_a_run_sets_its_forecast_against_what_it_took() {
    use sti_rollout::domain::pacing::Pacing;
    use sti_rollout::domain::run::RunKind;
    use sti_rollout::engine::operate;
    let f = fixture(Backend::Sqlite, 1_000).await;
    let app = TestApp::start(&f.config).await;
    let pacing = Pacing::parse(100, 20, None).unwrap();
    operate::dry_run(&f.control, &f.target, DEV, "user:ana", pacing, None, &mut |_, _| {}).await.unwrap();
    let (_, html) = app.get("/env/dev").await;
    assert!(testid_text(&html, "dry-run-by").starts_with("Run by user:ana · "), "kept after a reload");
    assert!(html.contains("data-testid=\"would-create\""));

    let started = sti_rollout::engine::backfill::Start { pacing, ..start(100, 30_000) };
    let held = operate::begin(&f.control, &f.target, RunKind::Backfill, &started, None).await.unwrap();
    let (_, html) = app.get("/env/dev").await;
    let line = testid_text(&html, "run-forecast");
    assert!(line.starts_with("Forecast at its start: about ") && line.ends_with('.'), "{line}");
    backfill::run(&f.target, Some(&f.control), DEV, held, &mut |_, _| {}).await.unwrap();
    let (_, html) = app.get("/env/dev").await;
    let line = testid_text(&html, "run-forecast");
    assert!(line.contains("; it took ") && (line.contains("% ") || line.contains("as forecast")), "{line}");
}
