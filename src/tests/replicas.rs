//! Three `sti-rollout serve` processes on one PostgreSQL control database (PRODUCT §7): a run
//! started on the first spreads over workers on all three; the first is killed -9 mid-run; the
//! others take the run over and finish it — no duplicate, no gap, verify clean — while a page on
//! the third follows it live; a sign-in throttled on one replica is throttled on the others.

use crate::engine_runs::{count, DEV};
use crate::support::{
    add_user, browser, call_at, config, config_vars, open, signed_in, Backend, Served, TEST_PASSWORD,
};
use sqlx::Row;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};
use sti_rollout::db::seed::{seed, SeedMode};
use sti_rollout::db::Schema;
use sti_rollout::domain::access::Role;
use sti_rollout::engine::verify;

const ROWS: i64 = 100_000;

fn replica(
    vars: &std::collections::BTreeMap<String, String>,
    data: &std::path::Path,
    log: &std::path::Path,
) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sti-rollout"));
    for var in ["STI_CONFIG", "STI_ADDR", "LEPTOS_SITE_ADDR"] {
        command.env_remove(var);
    }
    command
        .envs(vars)
        .env("STI_DATA_DIR", data)
        .env("STI_LOG", "info,sqlx=error")
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stderr(std::fs::File::create(log).unwrap());
    Served::start(command)
}

/// Reads `/events/dev` on a replica until the run is completed: each update's run state and
/// rows read.
async fn follow(client: reqwest::Client, address: String) -> Vec<(String, i64)> {
    let mut response = client.get(format!("{address}/events/dev")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (mut seen, mut buffer) = (Vec::new(), String::new());
    while let Ok(Some(bytes)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
            let Ok(view) = serde_json::from_str::<serde_json::Value>(data.trim()) else { continue };
            let Some(run) = view.get("run").filter(|r| !r.is_null()) else { continue };
            let state = run["state"].as_str().unwrap_or_default().to_owned();
            seen.push((state.clone(), run["rows_read"].as_i64().unwrap_or(0)));
            if state == "completed" {
                return seen;
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_three_replicas_share_a_run_and_finish_it_when_one_is_killed() {
    let (config, dir) = config(Backend::Postgres, [0, 0, 0]).await;
    let control = open(&config.control, Schema::Control).await;
    let target = open(&config.targets[DEV].url, Schema::Target).await;
    seed(&target, ROWS, SeedMode::Fresh, |_, _| {}).await.unwrap();
    let vars = config_vars(&config);
    let logs: Vec<_> = (1..=3).map(|n| dir.path().join(format!("replica-{n}.log"))).collect();
    let mut replicas: Vec<Option<Served>> =
        (1..=3).map(|n| Some(replica(&vars, &dir.path().join(format!("data-{n}")), &logs[n - 1]))).collect();
    let address = |n: usize| replicas[n].as_ref().unwrap().address.clone();
    let (first, second, third) = (address(0), address(1), address(2));
    add_user(&control, "ops", Role::Operator).await;
    add_user(&control, "watcher", Role::Viewer).await;
    let show_logs = || {
        logs.iter()
            .map(|log| std::fs::read_to_string(log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };

    // a page on the third replica, opened before the run starts, follows it to its end
    let viewer = signed_in(&third, "watcher").await;
    let page = tokio::spawn(follow(viewer, third.clone()));

    // started on the first, with two workers on each replica
    let ops = signed_in(&first, "ops").await;
    let (status, body) = call_at(
        &first,
        &ops,
        "start_run",
        "env=dev&kind=backfill&chunk_size=200&pause_ms=100&confirm=&workers=2",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let run_id: i64 = body.trim().parse().unwrap();

    // every replica's workers take part before the first is killed
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids: BTreeSet<String> = sqlx::query_scalar::<_, String>(
            "select distinct split_part(worker, '#', 1) from sti_backfill_chunks where run_id = $1",
        )
        .bind(run_id)
        .fetch_all(target.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
        if pids.len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "only {pids:?} worked on the run\n{}", show_logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let read_before_kill = count(&target, "select rows_read from sti_backfill_runs").await;
    assert!(read_before_kill < ROWS, "the run ended before the first replica could be killed");
    replicas[0].take(); // kill -9
    let holder_before: String = sqlx::query_scalar("select lease_owner from sti_backfill_runs where id = $1")
        .bind(run_id)
        .fetch_one(target.pool())
        .await
        .unwrap();

    // the others take it over by themselves and finish it
    let seen = tokio::time::timeout(Duration::from_secs(120), page)
        .await
        .unwrap_or_else(|_| panic!("{}", show_logs()))
        .unwrap();
    let run = sqlx::query("select state, fencing_token, lease_owner, rows_read, checkpoint, high_id from sti_backfill_runs where id = $1")
        .bind(run_id)
        .fetch_one(target.pool())
        .await
        .unwrap();
    assert_eq!(run.get::<String, _>("state"), "completed", "{}", show_logs());
    assert!(run.get::<i64, _>("fencing_token") >= 2, "taken over");
    assert_ne!(run.get::<Option<String>, _>("lease_owner"), Some(holder_before.clone()));
    assert_eq!(run.get::<i64, _>("checkpoint"), run.get::<i64, _>("high_id"));

    // no duplicate (primary keys), no gap: every legacy row is in exactly one place
    let split = count(&target, "select count(*) from school_projects").await
        + count(&target, "select count(*) from self_study_projects").await
        + count(&target, "select count(distinct project_id) from sti_backfill_dead_letters").await;
    assert_eq!(split, ROWS);
    let report = verify::verify(&target, Some(&control), DEV, &mut |_, _| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        crate::workers::tiles(&target, run_id, ROWS).await,
        Vec::<String>::new(),
        "the ledger tiles the range"
    );
    let take_overs = count(
        &control,
        "select count(*) from audit_log where action = 'run.take_over' and actor like 'replica:%'",
    )
    .await;
    assert_eq!(take_overs, 1, "one replica took the run over");

    // the page on the third replica saw the run go on and end
    let rows: Vec<i64> = seen.iter().filter(|(state, _)| state == "running").map(|(_, rows)| *rows).collect();
    assert!(rows.iter().any(|r| *r < read_before_kill), "{seen:?}");
    assert!(rows.iter().any(|r| *r > read_before_kill), "{seen:?}");
    assert_eq!(seen.last().map(|(state, _)| state.as_str()), Some("completed"));

    // a sign-in throttled on one replica is throttled on the others
    for _ in 0..2 {
        let wrong = browser()
            .post(format!("{second}/login"))
            .form(&[("username", "ops"), ("password", "wrong password"), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_ne!(wrong.status().as_u16(), 500);
    }
    let elsewhere = browser()
        .post(format!("{third}/login"))
        .form(&[("username", "ops"), ("password", TEST_PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 429, "the third replica knows of the second's failures");
    // and a session made on one replica is good on another
    let session = signed_in(&third, "watcher").await;
    let overview = session.get(format!("{second}/")).send().await.unwrap();
    assert_eq!(overview.status().as_u16(), 200);
}

/// A console-started run whose runner stopped renewing its lease (on another machine: its
/// process cannot be seen) is taken over by a replica once the lease expired by the target's
/// clock, and completed, without an operator; a CLI-started run is left to the CLI.
async fn a_console_run_whose_lease_expired_is_taken_over_by_a_replica(backend: Backend) {
    use sti_rollout::engine::{backfill, runs};
    let f = crate::engine_runs::fixture(backend, 3_000).await;
    let mut by_cli =
        backfill::Start { started_by: "cli:someone".into(), ..crate::engine_runs::start(500, 100) };
    let cli_run = backfill::begin(&f.target, &by_cli).await.unwrap();
    // the "CLI" dies: its run stays active and the lease runs out, but no replica touches it
    let app = crate::support::TestApp::start(&f.config).await;
    tokio::time::sleep(Duration::from_millis(2 * WATCH.as_millis() as u64 + 500)).await;
    assert_eq!(runs::get(&f.target, cli_run.run.id).await.unwrap().fencing_token, cli_run.token);
    sqlx::query("update sti_backfill_runs set state = 'cancelled', active_slot = null where id = $1")
        .bind(cli_run.run.id)
        .execute(f.target.pool())
        .await
        .unwrap();

    by_cli.started_by = "user:ops".into();
    let abandoned = backfill::begin(&f.target, &by_cli).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let run = runs::get(&f.target, abandoned.run.id).await.unwrap();
        if run.state == sti_rollout::domain::run::RunState::Completed {
            break run;
        }
        assert!(Instant::now() < deadline, "not taken over: {run:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run.fencing_token, abandoned.token + 1, "taken over once");
    assert_eq!(run.rows_read, 3_000, "{run:?}");
    let actor: String = sqlx::query_scalar("select actor from audit_log where action = 'run.take_over'")
        .fetch_one(f.control.pool())
        .await
        .unwrap();
    assert!(actor.starts_with("replica:"), "{actor}");
    assert_eq!(crate::workers::tiles(&f.target, run.id, 3_000).await, Vec::<String>::new());
    // the run history names both holders (issue 29 #8)
    let (_, html) = app.get("/env/dev").await;
    let marker = format!("data-testid=\"holders-{}\"", run.id);
    let cell = &html[html.find(&marker).expect("the run is in the history")..];
    let cell = &cell[..cell.find("</td>").unwrap()];
    assert!(cell.contains("user:ops") && cell.contains("taken over by replica:"), "{cell}");
    drop(app);
}

const WATCH: Duration = sti_rollout::server::watch::WATCH_EVERY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_console_run_whose_lease_expired_is_taken_over_by_a_replica() {
    a_console_run_whose_lease_expired_is_taken_over_by_a_replica(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_console_run_whose_lease_expired_is_taken_over_by_a_replica() {
    a_console_run_whose_lease_expired_is_taken_over_by_a_replica(Backend::Postgres).await;
}
