//! `sti-rollout user …`: passwords only from the terminal or stdin, hashed with argon2; role
//! changes, password changes and disabling end the user's sessions.

use crate::support::{config, config_vars, open, stderr, stdout, Backend};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use sti_rollout::db::{users, Schema};
use sti_rollout::domain::access::Username;
use sti_rollout::server::password;

fn user_cli(args: &[&str], vars: &BTreeMap<String, String>, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sti-rollout"))
        .arg("user")
        .args(args)
        .envs(vars)
        .env("STI_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused on its arguments exits before reading stdin: the pipe is then closed.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    child.wait_with_output().unwrap()
}

async fn users_are_managed_from_the_cli_with_hashed_passwords(backend: Backend) {
    let (config, _dir) = config(backend, [1, 1, 1]).await;
    let vars = config_vars(&config);
    let ana = Username::parse("ana").unwrap();

    let added =
        user_cli(&["add", "--username", "ana", "--role", "operator"], &vars, "correct horse battery\n");
    assert!(added.status.success(), "{}", stderr(&added));
    assert_eq!(stderr(&added), "user ana added as operator\n");

    let again = user_cli(&["add", "--username", "ana"], &vars, "correct horse battery\n");
    assert_eq!(
        (again.status.code(), stderr(&again).as_str()),
        (Some(1), "error: a user 'ana' already exists\n")
    );
    let short = user_cli(&["add", "--username", "bo"], &vars, "short\n");
    assert_eq!(short.status.code(), Some(2), "bo is not a valid user name");
    let short = user_cli(&["add", "--username", "bob"], &vars, "too short\n");
    assert_eq!(
        (short.status.code(), stderr(&short).as_str()),
        (Some(1), "error: a password has at least 12 characters\n")
    );
    let in_argument =
        user_cli(&["add", "--username", "bob", "--password", "correct horse battery"], &vars, "");
    assert_eq!(in_argument.status.code(), Some(2), "a password is never taken from an argument");

    let control = open(&config.control, Schema::Control).await;
    let (user, hash) = users::find(&control, &ana).await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("correct horse"));
    assert!(password::verify("correct horse battery", &hash));
    assert_eq!(users::count(&control).await.unwrap(), 1, "bob was never created");

    let listed = user_cli(&["list", "--json"], &vars, "");
    let list: serde_json::Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
    assert_eq!(list[0]["username"], "ana");
    assert_eq!(list[0]["role"], "operator");
    assert_eq!(list[0]["disabled"], false);
    assert!(!stdout(&listed).contains("argon2"));

    // every change ends the user's sessions
    let session = |id: &'static str| {
        let control = control.clone();
        async move {
            sqlx::query("insert into sessions (id_hash, user_id, created_at, expires_at) values ($1, $2, 0, 9999999999999)")
                .bind(id)
                .bind(user.id)
                .execute(control.pool())
                .await
                .unwrap();
        }
    };
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from sessions").fetch_one(control.pool()).await.unwrap()
    };
    session("s1").await;
    assert!(user_cli(&["set-role", "--username", "ana", "--role", "viewer"], &vars, "").status.success());
    assert_eq!(sessions().await, 0);
    session("s2").await;
    let changed = user_cli(&["set-password", "--username", "ana"], &vars, "a brand new passphrase\n");
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert_eq!(sessions().await, 0);
    let (_, hash) = users::find(&control, &ana).await.unwrap().unwrap();
    assert!(
        password::verify("a brand new passphrase", &hash)
            && !password::verify("correct horse battery", &hash)
    );
    session("s3").await;
    assert!(user_cli(&["disable", "--username", "ana"], &vars, "").status.success());
    assert_eq!(sessions().await, 0);
    let (user, _) = users::find(&control, &ana).await.unwrap().unwrap();
    assert!(user.disabled);
    assert_eq!(user.role.as_str(), "viewer");

    let missing = user_cli(&["disable", "--username", "nobody"], &vars, "");
    assert_eq!(stderr(&missing), "error: there is no user 'nobody'\n");

    // every change is in the audit log, with who made it and the state before and after
    let audited = sti_rollout::db::audit::recent(&control, None, 10).await.unwrap();
    let actions: Vec<&str> = audited.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["user.add", "user.set_role", "user.set_password", "user.disable"]);
    assert!(audited.iter().all(|e| e.actor.starts_with("cli:")));
    assert!(audited[2].before.as_deref().unwrap().contains(r#""role":"operator""#), "{:?}", audited[2]);
    assert!(audited[2].after.as_deref().unwrap().contains(r#""role":"viewer""#));
    assert!(audited.iter().all(|e| !e.after.as_deref().unwrap_or("").contains("passphrase")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_users_are_managed_from_the_cli_with_hashed_passwords() {
    users_are_managed_from_the_cli_with_hashed_passwords(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_are_managed_from_the_cli_with_hashed_passwords() {
    users_are_managed_from_the_cli_with_hashed_passwords(Backend::Postgres).await;
}

async fn sessions_rotate_at_login_and_end_with_the_user(backend: Backend) {
    use sti_rollout::db::sessions;
    use sti_rollout::domain::access::Role;
    let (config, _dir) = config(backend, [1, 1, 1]).await;
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let control = open(&config.control, Schema::Control).await;
    let ana = Username::parse("ana").unwrap();
    let user = users::create(
        &control,
        &ana,
        &password::hash("correct horse battery").unwrap(),
        Role::Operator,
        "test",
    )
    .await
    .unwrap();

    let first = sessions::start(&control, &user, None, 1_800_000).await.unwrap();
    assert_eq!(first.len(), 64);
    assert_eq!(sessions::user(&control, &first).await.unwrap().map(|u| u.2), Some(Role::Operator));
    let stored: String =
        sqlx::query_scalar("select id_hash from sessions").fetch_one(control.pool()).await.unwrap();
    assert_ne!(stored, first, "only the hash of a session id is stored");

    let second = sessions::start(&control, &user, Some(&first), 1_800_000).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(sessions::user(&control, &first).await.unwrap(), None, "the old id is gone after a new login");
    assert!(sessions::user(&control, &second).await.unwrap().is_some());

    sqlx::query("update sessions set expires_at = 1").execute(control.pool()).await.unwrap();
    assert_eq!(sessions::user(&control, &second).await.unwrap(), None, "an expired session is no session");

    let idle = sessions::start(&control, &user, None, 1_800_000).await.unwrap();
    sqlx::query("update sessions set last_seen_at = last_seen_at - 1800001 where id_hash = $1")
        .bind(sti_rollout::db::api_keys::key_hash(&idle))
        .execute(control.pool())
        .await
        .unwrap();
    sessions::touch(&control, &idle).await.unwrap();
    assert_eq!(
        sessions::user(&control, &idle).await.unwrap(),
        None,
        "30 minutes idle: no session, and no revival"
    );

    let third = sessions::start(&control, &user, None, 1_800_000).await.unwrap();
    users::disable(&control, &ana, "test").await.unwrap();
    assert_eq!(sessions::user(&control, &third).await.unwrap(), None, "a disabled user loses their sessions");
    let left: i64 =
        sqlx::query_scalar("select count(*) from sessions").fetch_one(control.pool()).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sessions_rotate_at_login_and_end_with_the_user() {
    sessions_rotate_at_login_and_end_with_the_user(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_rotate_at_login_and_end_with_the_user() {
    sessions_rotate_at_login_and_end_with_the_user(Backend::Postgres).await;
}
