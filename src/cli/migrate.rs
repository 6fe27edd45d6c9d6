//! `sti-rollout migrate`: the console's own databases are migrated; a configured target (the
//! application's database) is only checked, and with `--env` told what it needs, then changed.

use super::CliError;
use crate::db::target_schema::{self, MigrateError};
use crate::db::{Database, DbError};
use crate::domain::environment::Environment;
use crate::server::config::{Config, Target};
use crate::server::startup::StartupError;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// Bring this environment's configured target to what the engine needs: says what it
    /// will change, then changes it.
    #[arg(long)]
    env: Option<Environment>,
    /// Only say what --env would change.
    #[arg(long, requires = "env")]
    plan: bool,
    /// How long each migration may wait for a lock before it gives up, changing nothing.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    lock_timeout_ms: u64,
}

/// The control database is migrated; then `--env`'s target, or every target checked.
pub async fn run(
    config: &Config,
    MigrateArgs { env, plan, lock_timeout_ms }: MigrateArgs,
) -> Result<(), CliError> {
    let control = crate::server::startup::open_control(config).await?;
    println!("control: {} is up to date", control.url().describe());
    match env {
        Some(env) => one(config, env, plan, Duration::from_millis(lock_timeout_ms)).await,
        None => all(config).await,
    }
}

fn opening(env: Environment) -> impl Fn(DbError) -> CliError {
    move |source| CliError::Startup(StartupError::Database { what: env.to_string(), source })
}

async fn connect(env: Environment, target: &Target) -> Result<Database, CliError> {
    let db = if target.is_demo() {
        Database::connect(&target.url).await
    } else {
        Database::connect_existing(&target.url).await
    };
    db.map_err(opening(env))
}

/// Every target: a demo target is migrated, a configured one checked. Fails, naming them, when a
/// configured target needs `migrate --env`.
async fn all(config: &Config) -> Result<(), CliError> {
    let mut needing = Vec::new();
    for (env, target) in config.targets.iter() {
        let url = target.url.describe();
        // as every start opens it: a demo target migrated, a configured one checked
        match crate::server::startup::open_target(env, target).await {
            Ok(db) => {
                db.close().await;
                let state = if target.is_demo() {
                    "is up to date"
                } else {
                    "(configured) holds what the engine needs"
                };
                println!("{env}: {url} {state}");
            }
            Err(DbError::Schema { differences, .. }) => {
                println!("{env}: {url} (configured): {differences}");
                needing.push(env.to_string());
            }
            Err(e) => return Err(opening(env)(e)),
        }
    }
    if needing.is_empty() {
        return Ok(());
    }
    Err(CliError::User(format!(
        "nothing was changed in {}: `sti-rollout migrate --env ENV` says what it would change and changes it",
        needing.join(", ")
    )))
}

/// One target: what differs and which migrations would apply, then (unless `plan`) applies them
/// with `lock_timeout` for every lock, and checks again.
async fn one(config: &Config, env: Environment, plan: bool, lock_timeout: Duration) -> Result<(), CliError> {
    let target = &config.targets[env];
    let url = target.url.describe();
    let db = connect(env, target).await?;
    let result = plan_and_apply(&db, env, &url, plan, lock_timeout).await;
    db.close().await;
    result
}

async fn plan_and_apply(
    db: &Database,
    env: Environment,
    url: &str,
    plan: bool,
    lock_timeout: Duration,
) -> Result<(), CliError> {
    let differences = target_schema::check(db).await.map_err(opening(env))?;
    let pending = target_schema::pending(db).await.map_err(opening(env))?;
    // not a difference migrate mends: the runs put them back (a deferred run's end, the next
    // run, a console replica's watch, a cancel of the dead run)
    // (a target without the engine's tables yet has none to say)
    let keys_off = crate::engine::deferred::notice(db).await.unwrap_or_default();
    if let Some(notice) = &keys_off {
        println!("{env}: {notice}");
    }
    // the roles' rights: said, not mended (grants are the database owner's to give)
    let grants = target_schema::grants::missing(db).await.map_err(opening(env))?;
    for missing in &grants {
        println!("{env}: grants: {missing}");
    }
    if differences.is_empty() && pending.is_empty() {
        if keys_off.is_none() && grants.is_empty() {
            println!("{env}: {url} holds what the engine needs; nothing to do");
        }
        return Ok(());
    }
    println!("{env}: {url}");
    for difference in &differences {
        println!("  differs: {difference}");
    }
    let unmendable: Vec<_> = differences.iter().filter(|d| !d.migrate_mends()).cloned().collect();
    if !unmendable.is_empty() {
        return Err(CliError::Migrate { env, source: MigrateError::Unmendable(unmendable) });
    }
    println!(
        "  {} these migrations, each in one transaction, each waiting at most {} ms for a lock:",
        if plan { "would apply" } else { "applying" },
        lock_timeout.as_millis()
    );
    for migration in &pending {
        println!("    {} {}", migration.version, migration.description);
    }
    if plan {
        return Ok(());
    }
    target_schema::migrate(db, lock_timeout).await.map_err(|source| CliError::Migrate { env, source })?;
    // a migration that rebuilt a subtype table took the capture's triggers on it along
    crate::engine::capture::refresh(db).await;
    println!("{env}: {url} now holds what the engine needs");
    Ok(())
}
