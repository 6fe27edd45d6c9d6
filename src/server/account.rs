//! The user's own account: the first administrator, created with a generated password at the
//! first start, and `POST /account/password`, where a signed-in user replaces their password.

use super::auth::{cookie_name, session_id, CurrentUser};
use super::state::AppState;
use crate::db::login_throttle::{self, Reservation};
use crate::db::{users, Database};
use crate::domain::access::{Role, Username};
use axum::extract::{ConnectInfo, Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

/// A 503 for the control database (see [`super::unavailable`]).
fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Response {
    super::unavailable(what, "the control database", error)
}

/// With no user at all, creates `admin` with a random password, prints it once and writes it to
/// [`INITIAL_PASSWORD_FILE`] in the data folder, readable by its owner only. `admin` must choose
/// their own at the first sign-in, which deletes the file.
pub async fn ensure_first_admin(control: &Database, data_dir: &Path) -> Result<(), String> {
    if users::count(control).await.map_err(|e| e.to_string())? > 0 {
        return Ok(());
    }
    let password = super::password::random_password();
    let hash = super::password::hash(&password).map_err(|e| e.to_string())?;
    let admin = Username::parse("admin").map_err(|e| e.to_string())?;
    users::create_with_generated_password(control, &admin, &hash, Role::Admin, "system")
        .await
        .map_err(|e| e.to_string())?;
    super::startup::create_private_dir(data_dir)
        .map_err(|e| format!("data folder {}: {e}", data_dir.display()))?;
    let file = data_dir.join(INITIAL_PASSWORD_FILE);
    write_private(&file, &format!("{password}\n")).map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!(
        "\n  First start: created the user 'admin' with the password\n\n      {password}\n\n  \
         (also in {}, readable only by you). Sign in with it: the console then asks you to\n  \
         choose your own, and deletes the file.\n",
        file.display()
    );
    Ok(())
}

/// The first administrator's generated password, in the data folder until they replace it.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// The password change form.
#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

/// `POST /account/password`: the signed-in user replaces their own password, checked against
/// the current one (through the sign-in throttle: a stolen session cannot guess it quickly);
/// their other sessions end. After a generated password, its file goes. Back to `/account`
/// with what happened.
pub async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Extension(me): axum::Extension<CurrentUser>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let first = if me.must_change_password { "&first=1" } else { "" };
    let refuse = |code: &str| Redirect::to(&format!("/account?error={code}{first}")).into_response();
    let address = state.proxies.client(peer.ip(), &headers).to_string();
    match login_throttle::reserve(&state.control, me.username.as_str(), &address).await {
        Ok(Reservation::Check) => {}
        Ok(Reservation::Refused { .. }) => return refuse("wait"),
        Err(error) => return unavailable("cannot reserve a password check", &error),
    }
    let (user, stored) = match users::find(&state.control, &me.username).await {
        Ok(Some(found)) => found,
        Ok(None) => return refuse("gone"),
        Err(error) => return unavailable("cannot read a user", &error),
    };
    if !super::password::check(form.current.clone(), Some(stored)).await {
        if let Err(error) = login_throttle::failed(&state.control, me.username.as_str()).await {
            tracing::warn!(%error, "cannot count a wrong current password");
        }
        return refuse("wrong");
    }
    if let Err(error) = login_throttle::succeeded(&state.control, me.username.as_str(), &address).await {
        tracing::warn!(%error, "cannot clear the sign-in throttle");
    }
    if let Err(error) = crate::domain::access::check_new_password(&form.new) {
        let code = match error {
            crate::domain::access::CredentialError::PasswordTooLong => "long",
            _ => "short",
        };
        return refuse(code);
    }
    if form.new != form.repeat {
        return refuse("differ");
    }
    if form.new == form.current {
        return refuse("same");
    }
    let Some(session) = session_id(&headers, cookie_name(&state.security)) else { return refuse("gone") };
    let new = form.new;
    let hash = match tokio::task::spawn_blocking(move || super::password::hash(&new)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(error)) => return unavailable("cannot hash a password", &error),
        Err(error) => return unavailable("cannot hash a password", &error),
    };
    match users::change_own_password(&state.control, &user, &hash, &session).await {
        Ok(ended) => {
            tracing::info!(username = %user.username, ended, "password changed");
            if user.must_change_password {
                let file = state.data_dir.join(INITIAL_PASSWORD_FILE);
                match std::fs::remove_file(&file) {
                    Ok(()) => {
                        tracing::info!(file = %file.display(), "the generated password's file is deleted")
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        tracing::warn!(%error, file = %file.display(), "cannot delete the generated password's file")
                    }
                }
            }
            Redirect::to(&format!("/account?changed={ended}")).into_response()
        }
        Err(error) => unavailable("cannot change a password", &error),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
