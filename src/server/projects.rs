//! `/api/projects`: the application's projects API (PRODUCT §5), one contract whether
//! `ENABLE_STI` is off or on. A request is authenticated with an API key (`Authorization:
//! Bearer …`) that names its environment; the environment's live flag picks the mode for that
//! request (`X-STI-Mode: legacy | sti` in the answer). Every failure answers JSON
//! (`{"error": …, "fields": [{"field": …, "reason": …}]}`) with a status that says whose fault it
//! is: 400 a malformed request, 401 no or a bad key, 403 a read key writing, 404 no such project,
//! 415 a body that is not JSON, 422 a project that is not valid, 503 a database that cannot be
//! reached. `docs/openapi_v2.yaml` is generated from the code (`sti-rollout openapi`).
//!
//! Here: who calls (the key, its environment and mode) and how a refusal answers; the handlers
//! in `handlers`, the request's parsing in `request`, the OpenAPI description in `openapi`.

mod handlers;
mod openapi;
mod request;

pub use handlers::{create_project, delete_project, get_project, list_projects, replace_project};
pub use openapi::{openapi_yaml, ApiDoc};

use super::state::AppState;
use crate::db::pool::Database;
use crate::db::projects::{Mode, WriteError};
use crate::domain::access::Scope;
use crate::domain::environment::Environment;
use crate::domain::projects::FieldError;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// What went wrong, in words.
    pub error: String,
    /// The fields at fault, if the request had any.
    pub fields: Vec<FieldError>,
}

/// A refused request: its status and what to tell the caller. A 401 carries the
/// `WWW-Authenticate: Bearer` challenge.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    body: ApiError,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let challenge = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(self.body)).into_response();
        if challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A refusal with `status`, in words, with the fields at fault.
pub fn problem(status: StatusCode, error: impl Into<String>, fields: Vec<FieldError>) -> Refusal {
    Refusal { status, body: ApiError { error: error.into(), fields } }
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> Refusal {
    let id = crate::db::log_with_id(&format!("projects API: {what} cannot be reached"), &error);
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what} cannot be reached; try again (error id {id})"),
        vec![],
    )
}

/// Who is calling: the key's environment, its target database and the mode now.
struct Caller {
    env: Environment,
    target: Database,
    mode: Mode,
    /// `key:PREFIX`: what the audit trail names for the key's writes.
    actor: String,
    control: Database,
}

/// The bearer key's environment: 401 without a key or with a bad one, 403 for a read key that
/// writes.
pub async fn api_key(
    state: &AppState,
    headers: &HeaderMap,
    write: bool,
) -> Result<crate::db::api_keys::KeyHolder, Refusal> {
    let unauthorized = |why: &str| problem(StatusCode::UNAUTHORIZED, why, vec![]);
    let key = super::auth::bearer(headers)
        .ok_or_else(|| unauthorized("an API key is required: Authorization: Bearer <key>"))?;
    let holder = crate::db::api_keys::authenticate(&state.control, key.trim())
        .await
        .map_err(|e| unavailable("the control database", e))?
        .ok_or_else(|| unauthorized("the API key is not valid, or it was revoked or expired"))?;
    if write && holder.scope != Scope::Write {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "this API key may only read; writing needs a write key",
            vec![],
        ));
    }
    Ok(holder)
}

async fn caller(state: &AppState, headers: &HeaderMap, write: bool) -> Result<Caller, Refusal> {
    let holder = api_key(state, headers, write).await?;
    let env = holder.environment;
    let target = state.targets.get(env).clone();
    let flag = crate::db::control::flag(&state.control, env, crate::db::control::ENABLE_STI)
        .await
        .map_err(|e| unavailable("the control database", e))?;
    let mode = if flag.is_some_and(|f| f.enabled) { Mode::Sti } else { Mode::Legacy };
    Ok(Caller { env, target, mode, actor: holder.actor(), control: state.control.clone() })
}

impl Caller {
    /// Records a write the key made (in the target database, so after it: see `db::audit`).
    async fn audit(&self, action: &str, id: i64) {
        crate::db::audit::record_or_log(
            &self.control,
            crate::db::audit::Entry {
                actor: &self.actor,
                action,
                environment: Some(self.env),
                after: Some(serde_json::json!({ "project": id, "mode": self.mode.as_str() })),
                ..Default::default()
            },
        )
        .await;
    }

    fn answer(&self, status: StatusCode, body: impl Serialize) -> Response {
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert("x-sti-mode", HeaderValue::from_static(self.mode.as_str()));
        response
    }

    fn database_error(&self, error: impl std::fmt::Display) -> Refusal {
        unavailable(&format!("the {} database", self.env), error)
    }

    fn write_error(&self, error: WriteError) -> Refusal {
        match error {
            WriteError::NotFound(id) => not_found(id),
            WriteError::Db(error) => self.database_error(error),
        }
    }
}

fn not_found(id: i64) -> Refusal {
    problem(StatusCode::NOT_FOUND, format!("there is no project {id}"), vec![])
}

/// A handler's answer, or its refusal.
async fn answer(handler: impl std::future::Future<Output = Result<Response, Refusal>>) -> Response {
    handler.await.unwrap_or_else(IntoResponse::into_response)
}
