//! `sti-rollout apikey …`: a key is printed once, stored only as its hash, scoped, revocable.

use crate::support::{cli, config, config_vars, open, stderr, stdout, Backend};
use sti_rollout::db::{api_keys, Schema};
use sti_rollout::domain::access::Scope;
use sti_rollout::domain::environment::Environment;

async fn an_api_key_is_shown_once_stored_hashed_and_revocable(backend: Backend) {
    let (config, _dir) = config(backend, [1, 1, 1]).await;
    let vars = config_vars(&config);

    let created = cli(&["apikey", "create", "--env", "staging", "--scope", "write"], &vars);
    assert!(created.status.success(), "{}", stderr(&created));
    let key = stdout(&created);
    let key = key.strip_suffix('\n').unwrap();
    assert!(key.starts_with("sti_staging_") && key.len() == "sti_staging_".len() + 64, "{key}");
    assert!(!key.contains('\n'), "the key alone on stdout");
    assert_eq!(stderr(&created), "API key #1 for staging (write) created; it is shown only now:\n");

    let control = open(&config.control, Schema::Control).await;
    let stored: String =
        sqlx::query_scalar("select key_hash from api_keys").fetch_one(control.pool()).await.unwrap();
    assert_ne!(stored, key);
    assert_eq!(stored, api_keys::key_hash(key));
    let holder = api_keys::authenticate(&control, key).await.unwrap().unwrap();
    assert_eq!((holder.environment, holder.scope), (Environment::Staging, Scope::Write));
    assert_eq!(holder.actor(), format!("key:{}", &key[..16]));
    assert_eq!(api_keys::authenticate(&control, "sti_staging_guess").await.unwrap(), None);

    let listed = cli(&["apikey", "list", "--json"], &vars);
    assert!(!stdout(&listed).contains(key), "a listing never shows the key");
    assert!(stdout(&listed).contains(&key[..16]));

    assert!(cli(&["apikey", "revoke", "--id", "1"], &vars).status.success());
    assert_eq!(api_keys::authenticate(&control, key).await.unwrap(), None, "revoked at once");
    let again = cli(&["apikey", "revoke", "--id", "1"], &vars);
    assert_eq!(
        (again.status.code(), stderr(&again).as_str()),
        (Some(1), "error: API key #1 is already revoked\n")
    );
    let bad_scope = cli(&["apikey", "create", "--env", "dev", "--scope", "admin"], &vars);
    assert_eq!(bad_scope.status.code(), Some(2));
    assert!(stderr(&bad_scope).contains("unknown scope 'admin'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_api_key_is_shown_once_stored_hashed_and_revocable() {
    an_api_key_is_shown_once_stored_hashed_and_revocable(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_api_key_is_shown_once_stored_hashed_and_revocable() {
    an_api_key_is_shown_once_stored_hashed_and_revocable(Backend::Postgres).await;
}
