//! The five handlers of `/api/projects`, each with its OpenAPI path description.

use super::request::{parse_id, parse_list, valid_body};
use super::{answer, caller, not_found, problem, ApiError, Caller, Refusal};
use crate::db::projects;
use crate::domain::projects::{Project, ProjectPage};
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Project `id` in the caller's mode; 404 when there is none.
async fn read(caller: &Caller, id: i64) -> Result<Project, Refusal> {
    projects::get(&caller.target, caller.mode, id)
        .await
        .map_err(|e| caller.database_error(e))?
        .ok_or_else(|| not_found(id))
}

/// Lists projects, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/projects",
    tag = "projects",
    params(super::openapi::ListParams),
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
    request_body(content = super::openapi::ProjectInput, content_type = "application/json"),
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
    params(super::openapi::IdParam),
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
    params(super::openapi::IdParam),
    request_body(content = super::openapi::ProjectInput, content_type = "application/json"),
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
    params(super::openapi::IdParam),
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
