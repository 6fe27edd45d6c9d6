//! Flag evaluation for applications over the OpenFeature Remote Evaluation Protocol (OFREP):
//! `POST /ofrep/v1/evaluate/flags/{key}` and the bulk `POST /ofrep/v1/evaluate/flags` (with an
//! `ETag`; `If-None-Match` with the current one answers 304). The environment is the API key's;
//! the flag (`ENABLE_STI`) is read live from the control database, so a switch in the console is
//! what the next evaluation returns. CORS lets a browser application call it and read the `ETag`.

use super::projects::api_key;
use super::state::AppState;
use crate::domain::environment::Environment;
use crate::domain::overview::FlagState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One evaluation, as OFREP answers it.
fn evaluation(env: Environment, key: &str, flag: &FlagState) -> Value {
    json!({
        "key": key,
        "value": flag.enabled,
        "reason": "STATIC",
        "variant": if flag.enabled { "on" } else { "off" },
        "metadata": {
            "environment": env.as_str(),
            "updatedAt": flag.updated_at,
        },
    })
}

/// An OFREP error body: `errorCode` and `errorDetails`, with the flag's key when there is one.
fn failure(status: StatusCode, key: Option<&str>, code: &str, details: impl Into<String>) -> Response {
    let mut body = json!({ "errorCode": code, "errorDetails": details.into() });
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    cors((status, Json(body)).into_response())
}

/// What every OFREP answer carries for a browser on another origin.
fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag"));
    response
}

/// The preflight of a cross-origin call.
pub async fn preflight() -> Response {
    let mut response = cors(StatusCode::NO_CONTENT.into_response());
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-None-Match"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// The evaluation context: the body `{"context": {...}}`; an empty body is an empty context.
/// The flag does not depend on it, but a malformed one is refused as the protocol says: the
/// error code and its details.
fn context(body: &Bytes) -> Result<(), (&'static str, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ("PARSE_ERROR", format!("the body is not JSON: {e}")))?;
    match value.get("context") {
        _ if !value.is_object() => {
            Err(("INVALID_CONTEXT", "the body must be an object: {\"context\": {...}}".to_owned()))
        }
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(("INVALID_CONTEXT", "context must be an object".to_owned())),
    }
}

/// The caller's environment, from its API key (401 without a valid one).
async fn environment(state: &AppState, headers: &HeaderMap) -> Result<Environment, Response> {
    api_key(state, headers, false)
        .await
        .map(|holder| holder.environment)
        .map_err(|refusal| cors(refusal.into_response()))
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    let id = crate::db::log_with_id("OFREP: the control database cannot be read", &error);
    failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "GENERAL",
        format!("the flags cannot be read; try again (error id {id})"),
    )
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn evaluate_flag(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let env = match environment(&state, &headers).await {
        Ok(env) => env,
        Err(response) => return response,
    };
    if let Err((code, details)) = context(&body) {
        return failure(StatusCode::BAD_REQUEST, Some(&key), code, details);
    }
    match crate::db::control::flag(&state.control, env, &key).await {
        Ok(Some(flag)) => cors(Json(evaluation(env, &key, &flag)).into_response()),
        Ok(None) => {
            failure(StatusCode::NOT_FOUND, Some(&key), "FLAG_NOT_FOUND", format!("{env} has no flag '{key}'"))
        }
        Err(e) => unavailable(e),
    }
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the key's environment.
pub async fn evaluate_flags(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let env = match environment(&state, &headers).await {
        Ok(env) => env,
        Err(response) => return response,
    };
    if let Err((code, details)) = context(&body) {
        return failure(StatusCode::BAD_REQUEST, None, code, details);
    }
    let flags = match crate::db::control::flags(&state.control, env).await {
        Ok(flags) => flags,
        Err(e) => return unavailable(e),
    };
    let body =
        json!({ "flags": flags.iter().map(|(key, flag)| evaluation(env, key, flag)).collect::<Vec<_>>() });
    let text = body.to_string();
    let digest = crate::db::hex(&Sha256::digest(text.as_bytes())[..12]);
    let etag = format!("\"{digest}\"");
    let matches = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*")
    });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], text).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    cors(response)
}
