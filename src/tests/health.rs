//! A run's health, said the same on the overview, the environment page, `/metrics` and the CLI:
//! a run whose runner stopped beating is not "running", well before its lease runs out.

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
