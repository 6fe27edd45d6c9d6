//! `sti-rollout apikey …`: keys for applications, scoped to one environment and read or write.
//! `create` prints the key once, alone on stdout; every message goes to stderr.

use super::CliError;
use crate::db::api_keys;
use crate::db::Database;
use crate::domain::access::Scope;
use crate::domain::environment::Environment;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ApiKeyAction {
    /// Create a key; it is printed once and never stored in the clear.
    Create {
        #[arg(long)]
        env: Environment,
        #[arg(long)]
        scope: Scope,
        /// The key stops working after this many days (1 to 3650); without it, it works until revoked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List the keys (prefixes only).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its number; it stops working at once.
    Revoke {
        #[arg(long)]
        id: i64,
    },
}

pub async fn run(control: &Database, action: ApiKeyAction) -> Result<(), CliError> {
    let key_error = |e: api_keys::ApiKeyError| CliError::User(e.to_string());
    match action {
        ApiKeyAction::Create { env, scope, expires_in_days } => {
            let by = super::actor();
            let expires_at = expires_in_days.map(|days| crate::db::now_ms() + i64::from(days) * 86_400_000);
            let (created, key) =
                api_keys::create_expiring(control, env, scope, &by, expires_at).await.map_err(key_error)?;
            eprintln!(
                "API key #{} for {env} ({}) created; it is shown only now:",
                created.id,
                scope.as_str()
            );
            println!("{key}");
        }
        ApiKeyAction::List { json } => {
            let keys = api_keys::list(control).await.map_err(key_error)?;
            if json {
                println!("{}", serde_json::json!(keys));
            } else if keys.is_empty() {
                println!("no API keys yet");
            } else {
                println!("{:>4}  {:<8} {:<6} {:<18} state", "key", "env", "scope", "prefix");
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else if k.expires_at.is_some_and(|at| at <= crate::db::now_ms()) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:>4}  {:<8} {:<6} {:<18} {state}",
                        k.id,
                        k.environment,
                        k.scope.as_str(),
                        k.prefix
                    );
                }
            }
        }
        ApiKeyAction::Revoke { id } => {
            api_keys::revoke(control, id, &super::actor()).await.map_err(key_error)?;
            eprintln!("API key #{id} revoked");
        }
    }
    Ok(())
}
