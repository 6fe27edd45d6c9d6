//! Helpers: fresh databases, the app started in-process on port 0, the CLI binary, HTML probes.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use sti_rollout::db::{users, Database, DatabaseUrl, Schema};
use sti_rollout::domain::access::{Role, Username};
use sti_rollout::domain::environment::Environment;
use sti_rollout::server::config::Config;
use sti_rollout::server::password;
use sti_rollout::server::startup::Application;
use tempfile::TempDir;

/// Which engine a test's databases use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty PostgreSQL database on the test cluster.
pub async fn fresh_pg_database() -> DatabaseUrl {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = std::env::var("STI_TEST_PG_URL").expect(
        "STI_TEST_PG_URL must name a PostgreSQL superuser URL; scripts/test.sh starts a cluster and sets it",
    );
    let name = format!("sti_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let server = Database::connect(&DatabaseUrl::parse(&admin).unwrap()).await.unwrap();
    sqlx::query(&format!("create database {name}")).execute(server.pool()).await.unwrap();
    server.close().await;
    let (base, _) = admin.rsplit_once('/').unwrap();
    DatabaseUrl::parse(&format!("{base}/{name}")).unwrap()
}

/// A configuration on fresh databases, with `demo` rows of demo data for dev, staging and prod.
pub async fn config(backend: Backend, demo: [i64; 3]) -> (Config, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded(&dir.path().join("data"));
    if backend == Backend::Postgres {
        config.control = fresh_pg_database().await;
        for target in config.targets.values_mut() {
            target.url = fresh_pg_database().await;
        }
    }
    for (env, rows) in Environment::ALL.into_iter().zip(demo) {
        config.targets.get_mut(env).demo_rows = Some(rows);
    }
    // the CLI, given the URLs as variables, sees configured targets, which it only checks: they
    // are migrated here, as `sti-rollout migrate --env` would
    std::fs::create_dir_all(&config.data_dir).unwrap();
    for target in config.targets.values() {
        Database::open(&target.url, Schema::Target).await.unwrap().close().await;
    }
    (config, dir)
}

/// The same settings as environment variables, for the CLI binary.
pub fn config_vars(config: &Config) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::from([
        ("STI_DATA_DIR".to_owned(), config.data_dir.display().to_string()),
        ("STI_CONTROL_URL".to_owned(), config.control.expose().to_owned()),
    ]);
    for (env, target) in config.targets.iter() {
        vars.insert(format!("STI_{}_URL", env.as_str().to_ascii_uppercase()), target.url.expose().to_owned());
    }
    vars
}

/// The password of the users tests sign in as.
pub const TEST_PASSWORD: &str = "correct horse battery";

/// The console, started in-process on a free port, with a client signed in as an operator.
pub struct TestApp {
    pub address: String,
    /// Signed in as `tester` (operator); keeps its cookies.
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn start(config: &Config) -> Self {
        let app = Application::build(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        let task = tokio::spawn(app.run());
        let control = open(&config.control, Schema::Control).await;
        add_user(&control, "tester", Role::Operator).await;
        let client = signed_in(&address, "tester").await;
        Self { address, client, task }
    }

    /// A client signed in as `name`, a new user with `role`.
    pub async fn sign_in_new(&self, control: &Database, name: &str, role: Role) -> reqwest::Client {
        add_user(control, name, role).await;
        signed_in(&self.address, name).await
    }

    /// GET `path` as the signed-in operator: the status code and the body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.address)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// Adds a user with [`TEST_PASSWORD`] unless they exist.
pub async fn add_user(control: &Database, name: &str, role: Role) {
    let username = Username::parse(name).unwrap();
    if users::find(control, &username).await.unwrap().is_none() {
        users::create(control, &username, &password::hash(TEST_PASSWORD).unwrap(), role, "test")
            .await
            .unwrap();
    }
}

/// A client that keeps cookies and does not follow redirects, not signed in. A request that
/// takes over a minute fails the test instead of hanging the run.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A client signed in as `name` through `POST /login`.
pub async fn signed_in(address: &str, name: &str) -> reqwest::Client {
    let client = browser();
    let response = client
        .post(format!("{address}/login"))
        .form(&[("username", name), ("password", TEST_PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303, "login as {name}");
    assert_eq!(response.headers()["location"], "/");
    client
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens one database of `config` (already migrated by the app or the CLI).
pub async fn open(url: &DatabaseUrl, schema: Schema) -> Database {
    Database::open(url, schema).await.unwrap()
}

/// The text of the element with `data-testid="id"` in server-rendered HTML.
pub fn testid_text(html: &str, id: &str) -> String {
    let marker = format!("data-testid=\"{id}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no element {marker} in the page"));
    let after_tag = start + html[start..].find('>').unwrap() + 1;
    let end = after_tag + html[after_tag..].find('<').unwrap();
    html[after_tag..end].to_owned()
}

/// Runs the `sti-rollout` binary with `vars` set and nothing else inherited from configuration.
pub fn cli(args: &[&str], vars: &BTreeMap<String, String>) -> Output {
    cli_command(args, vars).output().unwrap()
}

/// Starts the `sti-rollout` binary as [`cli`] runs it, in the background, its output dropped
/// (a runner a test kills, or lets run beside it).
pub fn spawn_cli(args: &[&str], vars: &BTreeMap<String, String>) -> std::process::Child {
    cli_command(args, vars)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// As [`spawn_cli`], its stderr appended to `log` (for the test to show when it fails).
pub fn spawn_cli_logged(
    args: &[&str],
    vars: &BTreeMap<String, String>,
    log: &std::path::Path,
) -> std::process::Child {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    cli_command(args, vars).stdout(std::process::Stdio::null()).stderr(file).spawn().unwrap()
}

fn cli_command(args: &[&str], vars: &BTreeMap<String, String>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sti-rollout"));
    for var in [
        "STI_CONFIG",
        "STI_DATA_DIR",
        "STI_CONTROL_URL",
        "STI_DEV_URL",
        "STI_STAGING_URL",
        "STI_PROD_URL",
        "STI_ADDR",
        "LEPTOS_SITE_ADDR",
    ] {
        command.env_remove(var);
    }
    command.args(args).envs(vars).env("STI_LOG", "warn");
    command
}

/// What a finished CLI run printed on stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Calls server function `name` (found by its registered path) as `client`, as the console's
/// own client does: the status and the body.
pub async fn call(app: &TestApp, client: &reqwest::Client, name: &str, body: &str) -> (u16, String) {
    call_at(&app.address, client, name, body).await
}

/// [`call`] on the console at `address` (one started in-process, or a `serve` process).
pub async fn call_at(address: &str, client: &reqwest::Client, name: &str, body: &str) -> (u16, String) {
    let path = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .find(|path| path.trim_start_matches("/api/").starts_with(name))
        .unwrap_or_else(|| panic!("no server function {name}"));
    let response = client
        .post(format!("{address}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(sti_rollout::api::client::HEADER.0, sti_rollout::api::client::HEADER.1)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A `sti-rollout serve` process started from `command` (which should pass `--addr
/// 127.0.0.1:0`), at the address it printed; killed when dropped.
pub struct Served {
    child: std::process::Child,
    pub address: String,
}

impl Served {
    pub fn start(mut command: Command) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = command.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("serve printed its address").unwrap();
            if let Some(rest) = line.split("serving at ").nth(1) {
                break rest.trim_end_matches('/').to_owned();
            }
        };
        Self { child, address }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
