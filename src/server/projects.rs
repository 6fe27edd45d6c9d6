//! `/api/projects`: the application's projects API (PRODUCT §5), one contract whether
//! `ENABLE_STI` is off or on. A request is authenticated with an API key (`Authorization:
//! Bearer …`) that names its environment; the environment's live flag picks the mode for that
//! request (`X-STI-Mode: legacy | sti` in the answer). Every failure answers JSON
//! (`{"error": …, "fields": [{"field": …, "reason": …}]}`) with a status that says whose fault it
//! is: 400 a malformed request, 401 no or a bad key, 403 a read key writing, 404 no such project,
//! 415 a body that is not JSON, 422 a project that is not valid, 503 a database that cannot be
//! reached. `docs/openapi_v2.yaml` is generated from this file (`sti-rollout openapi`).

use super::state::AppState;
use crate::db::pool::Database;
use crate::db::projects::{self, Mode, WriteError};
use crate::domain::access::Scope;
use crate::domain::environment::Environment;
use crate::domain::projects::{
    validate, FieldError, NewProject, Project, ProjectInput, ProjectPage, SchoolProjectInput,
    SelfStudyProjectInput, DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE,
};
use crate::domain::study_type::StudyType;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

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
    let target = state.targets.get(env).cloned().ok_or_else(|| {
        problem(StatusCode::SERVICE_UNAVAILABLE, format!("{env} has no database configured"), vec![])
    })?;
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

/// The query of a list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The page, from 1.
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<i64>,
    /// Projects per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Only projects of this study type.
    pub study_type: Option<StudyType>,
}

/// A project's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdParam {
    /// The project's id.
    #[param(minimum = 1)]
    pub id: i64,
}

fn parse_list(query: Option<&str>) -> Result<(i64, i64, Option<StudyType>), Vec<FieldError>> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or_default()).map_err(|_| {
            vec![FieldError { field: "query".into(), reason: "is not a valid query string".into() }]
        })?;
    let value = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut errors = Vec::new();
    let mut number = |name: &str, default: i64, max: i64| match value(name) {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError {
                    field: name.into(),
                    reason: format!("must be an integer from 1 to {max}"),
                });
                default
            }
        },
    };
    let page = number("page", 1, MAX_PAGE);
    let per_page = number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE);
    let study_type = match value("study_type") {
        None => None,
        Some("school") => Some(StudyType::School),
        Some("self_study") => Some(StudyType::SelfStudy),
        Some(_) => {
            errors.push(FieldError {
                field: "study_type".into(),
                reason: "must be school or self_study".into(),
            });
            None
        }
    };
    if errors.is_empty() {
        Ok((page, per_page, study_type))
    } else {
        Err(errors)
    }
}

fn parse_id(raw: &str) -> Result<i64, Refusal> {
    raw.parse::<i64>().map_err(|_| {
        problem(
            StatusCode::BAD_REQUEST,
            "the project id must be an integer",
            vec![FieldError { field: "id".into(), reason: "must be an integer".into() }],
        )
    })
}

/// The request body, as JSON: 415 unless it says it is JSON, 400 unless it is.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<serde_json::Value, Refusal> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON: Content-Type: application/json",
            vec![],
        ));
    }
    serde_json::from_slice(body).map_err(|error| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {error}"),
            vec![FieldError { field: "body".into(), reason: "is not valid JSON".into() }],
        )
    })
}

/// The body of a create or a replace, checked: 415, 400 or 422 when it is not a valid project.
fn valid_body(headers: &HeaderMap, body: &Bytes) -> Result<NewProject, Refusal> {
    validate(&json_body(headers, body)?)
        .map_err(|fields| problem(StatusCode::UNPROCESSABLE_ENTITY, "the project is not valid", fields))
}

/// Project `id` in the caller's mode; 404 when there is none.
async fn read(caller: &Caller, id: i64) -> Result<Project, Refusal> {
    projects::get(&caller.target, caller.mode, id)
        .await
        .map_err(|e| caller.database_error(e))?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: i64) -> Refusal {
    problem(StatusCode::NOT_FOUND, format!("there is no project {id}"), vec![])
}

/// A handler's answer, or its refusal.
async fn answer(handler: impl std::future::Future<Output = Result<Response, Refusal>>) -> Response {
    handler.await.unwrap_or_else(IntoResponse::into_response)
}

/// Lists projects, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/projects",
    tag = "projects",
    params(ListParams),
    responses(
        (status = 200, description = "A page of projects", body = ProjectPage),
        (status = 400, description = "A query parameter is not valid", body = ApiError),
        (status = 401, description = "No API key, or a bad one", body = ApiError),
        (status = 503, description = "A database cannot be reached", body = ApiError),
    )
)]
pub async fn list_projects(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    answer(async {
        let caller = caller(&state, &headers, false).await?;
        let (page, per_page, study_type) = parse_list(query.as_deref())
            .map_err(|fields| problem(StatusCode::BAD_REQUEST, "the query is not valid", fields))?;
        let offset = (page - 1) * per_page;
        let mut items = projects::list(&caller.target, caller.mode, study_type, per_page + 1, offset)
            .await
            .map_err(|e| caller.database_error(e))?;
        let more = items.len() as i64 > per_page;
        items.truncate(per_page as usize);
        let next_page = more.then_some(page + 1);
        Ok(caller.answer(StatusCode::OK, ProjectPage { items, page, per_page, next_page }))
    })
    .await
}

/// Creates a project; in STI mode its legacy row and its subtype row in one transaction.
#[utoipa::path(
    post,
    path = "/api/projects",
    tag = "projects",
    request_body(content = ProjectInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = Project,
            headers(("Location" = String, description = "The new project's URL"))),
        (status = 400, description = "The body is not JSON", body = ApiError),
        (status = 401, description = "No API key, or a bad one", body = ApiError),
        (status = 403, description = "A read key", body = ApiError),
        (status = 415, description = "The body is not declared as JSON", body = ApiError),
        (status = 422, description = "The project is not valid", body = ApiError),
        (status = 503, description = "A database cannot be reached", body = ApiError),
    )
)]
pub async fn create_project(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    answer(async {
        let caller = caller(&state, &headers, true).await?;
        let new = valid_body(&headers, &body)?;
        let id = projects::create(&caller.target, caller.mode, &new)
            .await
            .map_err(|e| caller.database_error(e))?;
        caller.audit("project.create", id).await;
        // 404 if someone deleted it in between
        let project = read(&caller, id).await?;
        let mut response = caller.answer(StatusCode::CREATED, project);
        if let Ok(location) = HeaderValue::from_str(&format!("/api/projects/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    })
    .await
}

/// One project.
#[utoipa::path(
    get,
    path = "/api/projects/{id}",
    tag = "projects",
    params(IdParam),
    responses(
        (status = 200, description = "The project", body = Project),
        (status = 400, description = "The id is not an integer", body = ApiError),
        (status = 401, description = "No API key, or a bad one", body = ApiError),
        (status = 404, description = "No such project", body = ApiError),
        (status = 503, description = "A database cannot be reached", body = ApiError),
    )
)]
pub async fn get_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(async {
        let caller = caller(&state, &headers, false).await?;
        let project = read(&caller, parse_id(&id)?).await?;
        Ok(caller.answer(StatusCode::OK, project))
    })
    .await
}

/// Replaces a project (all its fields; it may change study type); in STI mode its legacy row
/// and its subtype row in one transaction.
#[utoipa::path(
    put,
    path = "/api/projects/{id}",
    tag = "projects",
    params(IdParam),
    request_body(content = ProjectInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The project as it is now", body = Project),
        (status = 400, description = "The id is not an integer, or the body is not JSON", body = ApiError),
        (status = 401, description = "No API key, or a bad one", body = ApiError),
        (status = 403, description = "A read key", body = ApiError),
        (status = 404, description = "No such project", body = ApiError),
        (status = 415, description = "The body is not declared as JSON", body = ApiError),
        (status = 422, description = "The project is not valid", body = ApiError),
        (status = 503, description = "A database cannot be reached", body = ApiError),
    )
)]
pub async fn replace_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answer(async {
        let caller = caller(&state, &headers, true).await?;
        let id = parse_id(&id)?;
        let new = valid_body(&headers, &body)?;
        projects::replace(&caller.target, caller.mode, id, &new).await.map_err(|e| caller.write_error(e))?;
        caller.audit("project.replace", id).await;
        let project = read(&caller, id).await?;
        Ok(caller.answer(StatusCode::OK, project))
    })
    .await
}

/// Deletes a project with its subtype row.
#[utoipa::path(
    delete,
    path = "/api/projects/{id}",
    tag = "projects",
    params(IdParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not an integer", body = ApiError),
        (status = 401, description = "No API key, or a bad one", body = ApiError),
        (status = 403, description = "A read key", body = ApiError),
        (status = 404, description = "No such project", body = ApiError),
        (status = 503, description = "A database cannot be reached", body = ApiError),
    )
)]
pub async fn delete_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(async {
        let caller = caller(&state, &headers, true).await?;
        let id = parse_id(&id)?;
        projects::delete(&caller.target, id).await.map_err(|e| caller.write_error(e))?;
        caller.audit("project.delete", id).await;
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.headers_mut().insert("x-sti-mode", HeaderValue::from_static(caller.mode.as_str()));
        Ok(response)
    })
    .await
}

/// The API key as a bearer token.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key of the environment (`sti-rollout apikey create --env E --scope read|write`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The projects API's OpenAPI description: `docs/openapi_v2.yaml` is this, printed.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "STI Rollout Console: projects API",
        version = "2.0.0",
        license(name = "Internal use"),
        description = "Projects over an environment's database, with one contract whether ENABLE_STI is off \
                       (legacy columns) or on (subtype tables). The environment is the API key's."
    ),
    paths(list_projects, create_project, get_project, replace_project, delete_project),
    components(schemas(Project, ProjectPage, ProjectInput, SchoolProjectInput, SelfStudyProjectInput, ApiError, FieldError, StudyType)),
    modifiers(&BearerKey),
    security(("api_key" = [])),
    tags((name = "projects", description = "The application's projects"))
)]
pub struct ApiDoc;

/// The OpenAPI description as YAML.
pub fn openapi_yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .unwrap_or_else(|error| format!("# cannot render the OpenAPI description: {error}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_openapi_description_is_what_the_code_generates() {
        let committed = include_str!("../../docs/openapi_v2.yaml");
        assert!(
            committed == openapi_yaml(),
            "docs/openapi_v2.yaml differs from the code's: run `cargo run --features ssr -- openapi > docs/openapi_v2.yaml`"
        );
    }

    #[test]
    fn list_queries_are_checked_field_by_field() {
        assert_eq!(parse_list(None), Ok((1, DEFAULT_PER_PAGE, None)));
        assert_eq!(
            parse_list(Some("page=3&per_page=100&study_type=self_study")),
            Ok((3, 100, Some(StudyType::SelfStudy)))
        );
        let fields = |q: &str| {
            parse_list(Some(q)).err().unwrap_or_default().into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert_eq!(fields("page=0&per_page=101&study_type=School"), ["page", "per_page", "study_type"]);
        assert_eq!(fields("page=abc&per_page=1e3"), ["page", "per_page"]);
        assert_eq!(fields("page=100001"), ["page"]);
    }
}
