//! The rollout plan's server functions: the flag, the checklist, and the overview's matrix.
//! Roles are checked on the server; gates are enforced in the engine (`engine::operate`).

use crate::domain::checklist::SignState;
use leptos::prelude::*;

/// Turns `ENABLE_STI` on or off (operators). Prod needs its name typed; turning it on needs the
/// environment verified unless an admin overrides the gate with a reason.
#[server(endpoint = "set_flag", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn set_flag(
    env: String,
    enabled: bool,
    confirm: String,
    reason: String,
    override_gate: Option<String>,
) -> Result<bool, ServerFnError> {
    use crate::domain::access::Role;
    let user = super::require(Role::Operator).await?;
    let (env, control, _) = super::environment::server::environment(&env)?;
    super::environment::server::confirmed(env, &confirm)?;
    let override_gate = super::environment::server::admin_override(&user, override_gate)?;
    crate::engine::operate::set_flag(
        &control,
        env,
        &user.actor(),
        enabled,
        Some(&reason),
        override_gate.as_deref(),
    )
    .await
    .map_err(|e| super::environment::server::engine_error(env, e))
}

/// Signs a checklist item in an environment (its owner role or above); the sign-off supersedes
/// the previous one, which stays in the history.
#[server(endpoint = "sign_checklist", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn sign_checklist(
    env: String,
    item_id: i64,
    state: SignState,
    comment: String,
    evidence_url: String,
) -> Result<(), ServerFnError> {
    use crate::domain::access::Role;
    use crate::domain::checklist::{refuse_signoff, SignOff};
    use axum::http::StatusCode;
    let user = super::require(Role::Viewer).await?;
    let (env, control, _) = super::environment::server::environment(&env)?;
    let fail = super::environment::server::fail;
    let items = crate::db::checklist::items(&control)
        .await
        .map_err(|e| super::environment::server::db_error("the checklist", e))?;
    let item = items
        .into_iter()
        .find(|i| i.id == item_id)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no checklist item #{item_id}")))?;
    let evidence = Some(evidence_url.trim().to_owned()).filter(|e| !e.is_empty());
    if let Some(refused) = refuse_signoff(user.role, &item, state, &comment, evidence.as_deref()) {
        let status =
            if user.role.allows(item.owner_role) { StatusCode::BAD_REQUEST } else { StatusCode::FORBIDDEN };
        return Err(fail(status, refused));
    }
    let signoff = SignOff {
        state,
        comment: comment.trim().to_owned(),
        evidence_url: evidence,
        signed_by: user.actor(),
        signed_at: crate::db::now_ms(),
    };
    crate::db::checklist::sign(&control, env, &item, &signoff)
        .await
        .map_err(|e| super::environment::server::db_error("the checklist", e))?;
    Ok(())
}

/// Sets the rollout's D-day (admins), `YYYY-MM-DD`; an empty date clears it (the config file's
/// applies again). Audited as `timeline.d_day`.
#[server(endpoint = "set_d_day", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn set_d_day(date: String, reason: String) -> Result<(), ServerFnError> {
    use crate::domain::access::Role;
    use axum::http::StatusCode;
    let user = super::require(Role::Admin).await?;
    let state = super::app_state()?;
    let day = match date.trim() {
        "" => None,
        text => Some(
            crate::domain::calendar::Day::parse(text)
                .map_err(|e| super::environment::server::fail(StatusCode::BAD_REQUEST, e))?,
        ),
    };
    crate::db::timeline::change_d_day(&state.control, day, &user.actor(), Some(&reason))
        .await
        .map_err(|e| super::environment::server::db_error("the timeline", e))?;
    Ok(())
}

/// Adds an item to the end of the checklist template (admins); every environment gets it.
#[server(endpoint = "add_checklist_item", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn add_checklist_item(title: String, owner_role: String) -> Result<i64, ServerFnError> {
    use crate::domain::access::Role;
    use axum::http::StatusCode;
    let user = super::require(Role::Admin).await?;
    let state = super::app_state()?;
    let fail = super::environment::server::fail;
    let title = crate::domain::checklist::item_title(&title).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let owner_role = Role::parse(&owner_role).map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    crate::db::checklist::add_item(&state.control, title, owner_role, &user.actor())
        .await
        .map_err(|e| super::environment::server::db_error("the checklist", e))
}

/// Retires an item of the checklist template (admins); its sign-offs stay in the history.
#[server(endpoint = "retire_checklist_item", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn retire_checklist_item(id: i64) -> Result<(), ServerFnError> {
    use crate::domain::access::Role;
    let user = super::require(Role::Admin).await?;
    let state = super::app_state()?;
    let retired = crate::db::checklist::retire_item(&state.control, id, &user.actor())
        .await
        .map_err(|e| super::environment::server::db_error("the checklist", e))?;
    if !retired {
        return Err(super::environment::server::fail(
            axum::http::StatusCode::NOT_FOUND,
            format!("there is no current checklist item #{id}"),
        ));
    }
    Ok(())
}

/// The items the signed-in user's role owns, in every environment: their "My sign-offs" page.
#[server(endpoint = "my_signoffs", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn my_signoffs() -> Result<crate::domain::checklist::MySignoffs, ServerFnError> {
    use crate::domain::environment::Environment;
    let user = super::require(crate::domain::access::Role::Viewer).await?;
    let state = super::app_state()?;
    let mut environments = Vec::new();
    for env in Environment::ALL {
        let entries = crate::db::checklist::entries(&state.control, env)
            .await
            .map_err(|e| super::environment::server::db_error("the checklist", e))?;
        environments.push((env, entries.into_iter().filter(|e| e.item.owner_role == user.role).collect()));
    }
    Ok(crate::domain::checklist::MySignoffs { role: user.role, environments })
}
