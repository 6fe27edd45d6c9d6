//! `sti-rollout seed`: generates rows, refuses a table that has rows unless told to append.

use crate::support::{cli, config, config_vars, open, stderr, stdout, Backend};
use sti_rollout::db::{target, Schema};
use sti_rollout::domain::environment::Environment;

async fn seed_refuses_a_table_with_rows_unless_appending(backend: Backend) {
    let (config, _dir) = config(backend, [1, 1, 1]).await;
    let vars = config_vars(&config);

    let first = cli(&["seed", "--env", "dev", "--rows", "300"], &vars);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).starts_with("dev: 300 legacy rows generated (ids 1–300) in "),
        "{}",
        stdout(&first)
    );

    let refused = cli(&["seed", "--env", "dev", "--rows", "10"], &vars);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        "error: seed dev: the environment already has 300 legacy rows: pass --append to add more\n"
    );

    let appended = cli(&["seed", "--env", "dev", "--rows", "10", "--append"], &vars);
    assert!(appended.status.success(), "{}", stderr(&appended));
    assert!(stdout(&appended).starts_with("dev: 10 legacy rows generated (ids 301–310)"));

    let dev = open(&config.targets[Environment::Dev].url, Schema::Target).await;
    assert_eq!(target::table_counts(&dev).await.unwrap().legacy, 310);
    let staging = open(&config.targets[Environment::Staging].url, Schema::Target).await;
    assert_eq!(target::table_counts(&staging).await.unwrap().legacy, 0, "other environments untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_seed_refuses_a_table_with_rows_unless_appending() {
    seed_refuses_a_table_with_rows_unless_appending(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seed_refuses_a_table_with_rows_unless_appending() {
    seed_refuses_a_table_with_rows_unless_appending(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rejects_bad_arguments_before_touching_anything() {
    let (config, _dir) = config(Backend::Sqlite, [1, 1, 1]).await;
    let vars = config_vars(&config);
    for (args, expected) in [
        (vec!["seed", "--env", "dev", "--rows", "0"], "0 is not in 1..=50000000"),
        (vec!["seed", "--env", "dev", "--rows", "-5"], "unexpected argument '-5'"),
        (
            vec!["seed", "--env", "qa", "--rows", "5"],
            "unknown environment 'qa': expected one of dev, staging, prod",
        ),
        (vec!["seed", "--env", "dev"], "--rows <ROWS>"),
    ] {
        let output = cli(&args, &vars);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(expected), "{args:?}: {}", stderr(&output));
    }
    // the test's own setup made the targets; the CLI made nothing, not even its control database
    assert!(!config.data_dir.join("control.db").exists(), "nothing was created");
}
