//! `sti-rollout user …`: people and their roles. Passwords are read from the terminal (twice,
//! without echo) or from the first line of stdin, never from an argument.

use super::CliError;
use crate::db::users::{self, User};
use crate::db::Database;
use crate::domain::access::{check_new_password, Role, Username};
use crate::server::password;
use clap::Subcommand;
use std::io::{BufRead, IsTerminal};

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Add a user; the password is asked for (or read from stdin).
    Add {
        #[arg(long)]
        username: Username,
        #[arg(long, default_value = "viewer")]
        role: Role,
    },
    /// Set a user's password; their sessions end.
    SetPassword {
        #[arg(long)]
        username: Username,
    },
    /// Change a user's role; their sessions end.
    SetRole {
        #[arg(long)]
        username: Username,
        #[arg(long)]
        role: Role,
    },
    /// Disable a user; their sessions end at once.
    Disable {
        #[arg(long)]
        username: Username,
    },
    /// List the users.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(control: &Database, action: UserAction) -> Result<(), CliError> {
    let user_error = |e: users::UserError| CliError::User(e.to_string());
    match action {
        UserAction::Add { username, role } => {
            let hash = new_password_hash(&username)?;
            let user =
                users::create(control, &username, &hash, role, &super::actor()).await.map_err(user_error)?;
            eprintln!("user {} added as {}", user.username, user.role);
        }
        UserAction::SetPassword { username } => {
            if users::find(control, &username).await.map_err(user_error)?.is_none() {
                return Err(user_error(users::UserError::NotFound(username)));
            }
            let hash = new_password_hash(&username)?;
            users::set_password(control, &username, &hash, &super::actor()).await.map_err(user_error)?;
            eprintln!("password of {username} changed; their sessions ended");
        }
        UserAction::SetRole { username, role } => {
            let user =
                users::set_role(control, &username, role, &super::actor()).await.map_err(user_error)?;
            eprintln!("{} is now {}; their sessions ended", user.username, user.role);
        }
        UserAction::Disable { username } => {
            let user = users::disable(control, &username, &super::actor()).await.map_err(user_error)?;
            eprintln!("{} is disabled; their sessions ended", user.username);
        }
        UserAction::List { json } => {
            let all = users::list(control).await.map_err(user_error)?;
            if json {
                println!("{}", serde_json::json!(all));
            } else {
                print_table(&all);
            }
        }
    }
    Ok(())
}

fn print_table(all: &[User]) {
    if all.is_empty() {
        println!("no users yet");
        return;
    }
    println!("{:<24} {:<9} state", "user", "role");
    for user in all {
        println!(
            "{:<24} {:<9} {}",
            user.username,
            user.role,
            if user.disabled { "disabled" } else { "active" }
        );
    }
}

/// Reads a new password (asked twice on a terminal), checks the rule and hashes it.
fn new_password_hash(username: &Username) -> Result<String, CliError> {
    let read_error = |e: std::io::Error| CliError::User(format!("cannot read the password: {e}"));
    let password = if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password(format!("new password for {username}: ")).map_err(read_error)?;
        let again = rpassword::prompt_password("again: ").map_err(read_error)?;
        if first != again {
            return Err(CliError::User("the two passwords differ".into()));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(read_error)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    check_new_password(&password).map_err(|e| CliError::User(e.to_string()))?;
    password::hash(&password).map_err(|e| CliError::User(e.to_string()))
}
