//! A request's parts, checked: the list's query, the id in the path, the JSON body.

use super::{problem, Refusal};
use crate::domain::projects::{validate, FieldError, NewProject, DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE};
use crate::domain::study_type::StudyType;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};

pub(super) fn parse_list(query: Option<&str>) -> Result<(i64, i64, Option<StudyType>), Vec<FieldError>> {
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

pub(super) fn parse_id(raw: &str) -> Result<i64, Refusal> {
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
pub(super) fn valid_body(headers: &HeaderMap, body: &Bytes) -> Result<NewProject, Refusal> {
    validate(&json_body(headers, body)?)
        .map_err(|fields| problem(StatusCode::UNPROCESSABLE_ENTITY, "the project is not valid", fields))
}

#[cfg(test)]
mod tests {
    use super::*;

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
