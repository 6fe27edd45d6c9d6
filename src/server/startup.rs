//! Startup: check the data folder, bind, open every database (migrating the console's own), seed demo data once,
//! and build the router. Both checks come before any slow work: a folder that cannot be written
//! or a busy port fails at once.

use super::config::Config;
use super::render::RenderPool;
use super::routes::Access;
use super::state::AppState;
use crate::db::control::{self, SeedRecord};
use crate::db::overview::Targets;
use crate::db::seed::{self, SeedError, SeedMode};
use crate::db::{target, Database, DbError, Schema, SessionSettings};
use crate::domain::environment::{Environment, PerEnv};
use crate::domain::format::format_count;
use crate::ui::app::{shell, App};
use axum::middleware::from_fn_with_state;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;

/// Why the console could not start, in one sentence.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data folder {path} cannot be used: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("{what} database: {source}")]
    Database { what: String, source: DbError },
    #[error("cannot create the first administrator: {0}")]
    FirstAdmin(String),
    #[error("cannot generate demo data for {env}: {source}")]
    Seed { env: Environment, source: SeedError },
    #[error("cannot start the page render threads: {0}")]
    RenderThreads(std::io::Error),
    #[error(
        "{first} and {second} are one database (both targets hold identity {identity}): each environment \
         needs its own, or a rollback in one deletes the other's rows. If one is a restored copy of the \
         other, give the copy its own identity with `delete from sti_target_identity` in it"
    )]
    SharedTarget { first: Environment, second: Environment, identity: String },
}

/// A console that is bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
}

impl Application {
    /// Prepares everything `serve` needs. Port 0 picks a free port; [`Application::port`] tells which.
    pub async fn build(config: &Config, addr: SocketAddr) -> Result<Self, StartupError> {
        if config.uses_data_dir() {
            prepare_data_dir(&config.data_dir)?;
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| StartupError::Bind { addr, source })?;
        let (control, targets) = open_databases(config).await?;
        seed_demo_data(config, &control, &targets).await?;
        super::account::ensure_first_admin(&control, &config.data_dir)
            .await
            .map_err(StartupError::FirstAdmin)?;

        let leptos_options = leptos_options(local);
        let state = AppState {
            leptos_options: leptos_options.clone(),
            control,
            data_dir: config.data_dir.clone(),
            targets,
            metrics_token: config.metrics_token.clone(),
            proxies: std::sync::Arc::new(super::client_address::TrustedProxies::new(
                &config.security.trusted_proxies,
            )),
            security: std::sync::Arc::new(config.security.clone()),
            streams: Default::default(),
            contacts: std::sync::Arc::new(config.contacts.clone()),
            policies: std::sync::Arc::new(config.targets.map(|_, t| std::sync::Arc::new(t.policy.clone()))),
            d_day: config.d_day,
            http_metrics: Default::default(),
            webhooks: std::sync::Arc::new(config.webhooks.clone()),
        };
        // this replica takes over the console's abandoned runs and joins runs in slices
        super::watch::start(state.control.clone(), state.targets.clone(), state.policies.clone());
        // and tells the environments' webhooks what happened, whoever made it happen
        super::webhooks::start(state.control.clone(), state.webhooks.clone());
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get() * 2).clamp(2, 8);
        let renders = RenderPool::start(threads).map_err(StartupError::RenderThreads)?;
        let pkg = std::path::Path::new(&leptos_options.site_root.to_string())
            .join(leptos_options.site_pkg_dir.to_string());
        let pages = Router::new()
            .leptos_routes_with_context(
                &state,
                page_routes(),
                {
                    let api = state.api();
                    move || {
                        leptos::prelude::provide_context(api.clone());
                        provide_script_nonce();
                    }
                },
                move || shell(leptos_options.clone()),
            )
            // the site's own files, and nothing outside its folder (a plain 404 otherwise)
            .nest_service("/pkg", super::assets::pkg_service(&pkg))
            .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
            .layer(axum::middleware::from_fn_with_state(renders, super::render::isolate));
        let (by_key, by_session): (Vec<_>, Vec<_>) =
            super::routes::plain_routes().into_iter().partition(|r| r.access == Access::ApiKey);
        // the applications' routes check their API key themselves and are timed by route
        let applications = by_key
            .into_iter()
            .fold(Router::new(), |router, r| router.route(r.path, r.handler))
            .route_layer(from_fn_with_state(state.http_metrics.clone(), super::http_metrics::record));
        // the session guard stands in front of everything else, the pages' fallback included
        let router = by_session
            .into_iter()
            .fold(pages, |router, r| router.route(r.path, r.handler))
            .layer(from_fn_with_state(state.clone(), super::auth::guard))
            .merge(applications)
            .layer(axum::middleware::from_fn(super::assets::cache))
            .layer(from_fn_with_state(state.clone(), super::headers::security_headers));
        let router = super::requests::layers(router).with_state(state);
        Ok(Self { listener, router, port: local.port() })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown_signal())
            .await
    }

    /// Serves until the returned future is dropped (tests).
    pub async fn run(self) -> std::io::Result<()> {
        axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>()).await
    }
}

/// Gives the page its request's script nonce (see `server::headers`), the one the
/// `Content-Security-Policy` header names, instead of the one Leptos made up.
fn provide_script_nonce() {
    let nonce = leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<super::headers::Nonce>().cloned());
    if let Some(super::headers::Nonce(nonce)) = nonce {
        leptos::prelude::provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// The pages' routes, found by running the app once per process: the list never changes, and
/// running the app (and the resources it creates) again while other pages render can disturb
/// them (the access test reads the list from here for that reason).
pub fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// Opens and migrates the control database (creating the data folder first when a database
/// lives there), without touching any target: what every command starts with. Only `serve`
/// also proves the folder writable (`Application::build`): a command that only reads works in
/// a folder it may not write.
pub async fn open_control(config: &Config) -> Result<Database, StartupError> {
    if config.uses_data_dir() {
        create_private_dir(&config.data_dir)
            .map_err(|source| StartupError::DataDir { path: config.data_dir.clone(), source })?;
    }
    let database_error = |source| StartupError::Database { what: "control".into(), source };
    let control = Database::open(&config.control, Schema::Control).await.map_err(database_error)?;
    control::register_environments(&control).await.map_err(database_error)?;
    Ok(control)
}

/// The control database and one environment's target, without touching the other targets.
pub async fn open_control_and_target(
    config: &Config,
    env: Environment,
) -> Result<(Database, Database), StartupError> {
    let control = open_control(config).await?;
    let target = open_environment(&control, env, &config.targets[env]).await?;
    Ok((control, target))
}

/// Opens and migrates the control database, and opens every target database (see
/// [`open_target`]).
pub async fn open_databases(config: &Config) -> Result<(Database, Targets), StartupError> {
    let control = open_control(config).await?;
    let mut opened = Vec::new();
    for (env, target) in config.targets.iter() {
        opened.push(open_environment(&control, env, target).await?);
    }
    let mut opened = opened.into_iter();
    let targets = PerEnv::from_fn(|_| opened.next().expect("one database opened per environment"));
    Ok((control, Targets::new(targets)))
}

/// Opens `env`'s target (see [`open_target`]), records which database it is
/// ([`adopt_target`]) and brings the mirror up to it: what the console and every CLI command on
/// an environment do first.
pub async fn open_environment(
    control: &Database,
    env: Environment,
    target: &super::config::Target,
) -> Result<Database, StartupError> {
    let db = open_target(env, target)
        .await
        .map_err(|source| StartupError::Database { what: env.to_string(), source })?;
    adopt_target(control, env, &db).await?;
    crate::engine::capture::refresh(&db).await;
    crate::engine::mirror::reconcile_or_log(control, env, &db).await;
    Ok(db)
}

/// Opens one environment's target: a demo target is created and migrated; a configured one
/// must exist and hold what the engine needs, and nothing in it is created or changed.
pub async fn open_target(env: Environment, target: &super::config::Target) -> Result<Database, DbError> {
    let session = SessionSettings {
        application_name: format!("sti-rollout/{env}"),
        lock_timeout_ms: target.policy.session.lock_timeout_ms,
        statement_timeout_ms: target.policy.session.statement_timeout_ms,
    };
    if target.is_demo() {
        return Database::open_target(&target.url, &session).await;
    }
    let db = Database::connect_target(&target.url, false, &session).await?;
    let differences = crate::db::target_schema::check(&db).await?;
    if !differences.is_empty() {
        db.close().await;
        return Err(DbError::Schema {
            env: env.to_string(),
            url: target.url.describe(),
            differences: crate::db::target_schema::join(&differences),
        });
    }
    Ok(db)
}

/// Records which database `env`'s target is (see [`control::adopt_target`]): refuses one that
/// another environment's target also is, and audits a target that is another database than
/// before, whose former runs left the mirror.
async fn adopt_target(control: &Database, env: Environment, target: &Database) -> Result<(), StartupError> {
    let db_error = |source| StartupError::Database { what: env.to_string(), source };
    let identity = target::identity(target).await.map_err(db_error)?;
    match control::adopt_target(control, env, &identity).await.map_err(db_error)? {
        control::Adoption::Known | control::Adoption::First => Ok(()),
        control::Adoption::SharedWith(other) => {
            Err(StartupError::SharedTarget { first: other, second: env, identity })
        }
        control::Adoption::Replaced { former, runs } => {
            tracing::warn!(environment = %env, former, identity, runs,
                "the target is another database than before: the former one's runs and verifications left the mirror");
            crate::db::audit::record_or_log(
                control,
                crate::db::audit::Entry {
                    actor: "system",
                    action: "target.replaced",
                    environment: Some(env),
                    before: Some(serde_json::json!({ "target_identity": former, "runs": runs })),
                    after: Some(serde_json::json!({ "target_identity": identity })),
                    ..Default::default()
                },
            )
            .await;
            Ok(())
        }
    }
}

/// Generates demo data into each environment that asks for it, once: never again after a seed
/// was recorded, and never into a table that already holds someone's rows.
async fn seed_demo_data(config: &Config, control: &Database, targets: &Targets) -> Result<(), StartupError> {
    for (env, target) in config.targets.iter() {
        let Some(rows) = target.demo_rows else { continue };
        let db = targets.get(env);
        let seed_error = |source: SeedError| StartupError::Seed { env, source };
        let db_error = |source: DbError| seed_error(SeedError::Db(source));
        if control::was_seeded(control, env).await.map_err(db_error)? {
            continue;
        }
        if target::max_project_id(db).await.map_err(db_error)?.is_some() {
            tracing::info!(environment = %env, "legacy table already has rows; no demo data generated");
            continue;
        }
        let record = seed_with_progress(db, env, rows, SeedMode::Fresh).await.map_err(seed_error)?;
        control::record_seed(control, env, record).await.map_err(db_error)?;
    }
    Ok(())
}

/// Seeds `env`, logging progress after every batch and a summary at the end.
pub async fn seed_with_progress(
    db: &Database,
    env: Environment,
    rows: i64,
    mode: SeedMode,
) -> Result<SeedRecord, SeedError> {
    tracing::info!(environment = %env, rows, "generating demo data");
    let record = seed::seed(db, rows, mode, |done, total| {
        tracing::info!(environment = %env, "demo data: {} / {} rows", format_count(done), format_count(total));
    })
    .await?;
    tracing::info!(
        environment = %env,
        first_id = record.first_id,
        last_id = record.last_id,
        "demo data: {} rows in {:.1} s",
        format_count(record.rows),
        record.duration_ms as f64 / 1000.0
    );
    Ok(record)
}

/// Creates the data folder if needed (readable by its owner only: it holds the databases and
/// the first administrator's password) and proves it is writable.
fn prepare_data_dir(path: &Path) -> Result<(), StartupError> {
    let fail = |source| StartupError::DataDir { path: path.to_owned(), source };
    create_private_dir(path).map_err(fail)?;
    // one name per process: two commands starting at once must not remove each other's probe
    let probe = path.join(format!(".sti-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

/// Creates `path` and its missing parents, the new ones with mode 0700.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Leptos' settings: where the built site is and what the WebAssembly bundle is called.
fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("sti_rollout")
        .site_root(site_root())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .hash_files(hash_file_beside_binary())
        .build()
}

/// Whether the build named the site's files after their content: cargo-leptos's `hash-files`
/// writes `hash.txt` beside the binary, which Leptos reads from there to name them in pages. A
/// binary built without it (`cargo build`, the tests) serves the plain names.
fn hash_file_beside_binary() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("hash.txt").is_file()))
        .unwrap_or(false)
}

/// `LEPTOS_SITE_ROOT`, else `target/site` here, else the `site` folder next to the binary's own
/// folder (`target/release/sti-rollout` → `target/site`), so the binary runs from anywhere.
fn site_root() -> String {
    if let Ok(root) = std::env::var("LEPTOS_SITE_ROOT") {
        return root;
    }
    let local = PathBuf::from("target/site");
    if local.is_dir() {
        return local.display().to_string();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("site")))
        .filter(|dir| dir.is_dir())
        .unwrap_or(local)
        .display()
        .to_string()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
