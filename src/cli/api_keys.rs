//! `sti-rollout apikey …`: keys for applications, scoped to one environment and read or write.
//! `create` prints the key once, alone on stdout; every message goes to stderr.

use super::CliError;
use crate::db::api_keys;
use crate::db::audit;
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
        ApiKeyAction::Create { env, scope } => {
            let by = super::actor();
            let (created, key) = api_keys::create(control, env, scope, &by).await.map_err(key_error)?;
            eprintln!(
                "API key #{} for {env} ({}) created; it is shown only now:",
                created.id,
                scope.as_str()
            );
            println!("{key}");
            audit::record_or_log(
                control,
                audit::Entry {
                    actor: &by,
                    action: "apikey.create",
                    environment: Some(env),
                    after: Some(serde_json::json!({ "id": created.id, "scope": scope.as_str(), "prefix": created.prefix })),
                    ..Default::default()
                },
            )
            .await;
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
                    let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
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
            api_keys::revoke(control, id).await.map_err(key_error)?;
            eprintln!("API key #{id} revoked");
            audit::record_or_log(
                control,
                audit::Entry {
                    actor: &super::actor(),
                    action: "apikey.revoke",
                    after: Some(serde_json::json!({ "id": id })),
                    ..Default::default()
                },
            )
            .await;
        }
    }
    Ok(())
}
