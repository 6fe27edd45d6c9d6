//! The projects API's OpenAPI description (`docs/openapi_v2.yaml` is it, printed), with the
//! types that exist only to describe requests. Their limits repeat the domain's constants
//! (attributes take literals); a test below reads them back out of the generated document and
//! compares them with `domain::projects` and `domain::study_type`.

// the request types are descriptions: only their generated schema is read (`domain::projects::
// validate` reads the requests themselves)
#![expect(dead_code, reason = "the request types exist for their schema, their fields are never read")]

use super::handlers::{
    __path_create_project, __path_delete_project, __path_get_project, __path_list_projects,
    __path_replace_project,
};
use super::ApiError;
use crate::domain::projects::{FieldError, Project, ProjectPage};
use crate::domain::study_type::StudyType;
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

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

/// A school project, as a client writes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolProjectInput {
    #[schema(inline)]
    pub study_type: SchoolTag,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    #[schema(minimum = 1, maximum = 2147483647)]
    pub owner_id: i64,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub school_name: String,
    #[schema(minimum = 1, maximum = 13, nullable)]
    pub grade: Option<i64>,
}

/// A self-study project, as a client writes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfStudyProjectInput {
    #[schema(inline)]
    pub study_type: SelfStudyTag,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    #[schema(minimum = 1, maximum = 2147483647)]
    pub owner_id: i64,
    #[schema(inline)]
    pub pace: Pace,
    #[schema(format = Date, nullable)]
    pub goal_date: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchoolTag {
    School,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelfStudyTag {
    SelfStudy,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    Relaxed,
    Regular,
    Intensive,
}

/// The request body of a create or a replace: a project of either study type. The constraints
/// here are the ones [`validate`] checks.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ProjectInput {
    School(SchoolProjectInput),
    SelfStudy(SelfStudyProjectInput),
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
        let committed = include_str!("../../../docs/openapi_v2.yaml");
        assert!(
            committed == openapi_yaml(),
            "docs/openapi_v2.yaml differs from the code's: run `cargo run --features ssr -- openapi > docs/openapi_v2.yaml`"
        );
    }

    use crate::domain::projects::{DEFAULT_PER_PAGE, MAX_OWNER_ID, MAX_PAGE, MAX_PER_PAGE, MAX_TEXT};
    use crate::domain::study_type::{MAX_GRADE, MIN_GRADE, PACES};
    use serde_json::{json, Value};

    /// The generated document as JSON, and a step into it that names the path it failed at.
    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("the description is JSON")
    }

    fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
        path.iter().fold(value, |v, key| match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[*key],
        })
    }

    fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Value {
        let found = at(doc, &["components", "schemas", schema, "properties", field]);
        assert!(found.is_object(), "{schema}.{field} is not in the description");
        found
    }

    fn parameter<'a>(doc: &'a Value, name: &str) -> &'a Value {
        let parameters =
            at(doc, &["paths", "/api/projects", "get", "parameters"]).as_array().expect("parameters");
        let found =
            parameters.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no parameter {name}"));
        &found["schema"]
    }

    #[test]
    fn the_described_limits_and_enums_are_the_domains() {
        let doc = document();
        for schema in ["SchoolProjectInput", "SelfStudyProjectInput"] {
            let title = property(&doc, schema, "title");
            assert_eq!(
                (&title["minLength"], &title["maxLength"]),
                (&json!(1), &json!(MAX_TEXT)),
                "{schema}.title"
            );
            let owner = property(&doc, schema, "owner_id");
            assert_eq!(
                (&owner["minimum"], &owner["maximum"]),
                (&json!(1), &json!(MAX_OWNER_ID)),
                "{schema}.owner_id"
            );
        }
        let school_name = property(&doc, "SchoolProjectInput", "school_name");
        assert_eq!((&school_name["minLength"], &school_name["maxLength"]), (&json!(1), &json!(MAX_TEXT)));
        let grade = property(&doc, "SchoolProjectInput", "grade");
        assert_eq!((&grade["minimum"], &grade["maximum"]), (&json!(MIN_GRADE), &json!(MAX_GRADE)), "grade");
        assert_eq!(property(&doc, "SelfStudyProjectInput", "pace")["enum"], json!(PACES), "paces");
        assert_eq!(
            property(&doc, "SchoolProjectInput", "study_type")["enum"],
            json!([StudyType::School.as_str()])
        );
        assert_eq!(
            property(&doc, "SelfStudyProjectInput", "study_type")["enum"],
            json!([StudyType::SelfStudy.as_str()])
        );
        let study_types: Vec<&str> = StudyType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(at(&doc, &["components", "schemas", "StudyType", "enum"]), &json!(study_types));
        let page = parameter(&doc, "page");
        assert_eq!((&page["minimum"], &page["maximum"]), (&json!(1), &json!(MAX_PAGE)), "page");
        let per_page = parameter(&doc, "per_page");
        assert_eq!(
            (&per_page["minimum"], &per_page["maximum"]),
            (&json!(1), &json!(MAX_PER_PAGE)),
            "per_page"
        );
        let described = at(&doc, &["paths", "/api/projects", "get", "parameters", "1", "description"]);
        assert!(
            described
                .as_str()
                .is_some_and(|d| d.contains(&format!("1–{MAX_PER_PAGE} (default {DEFAULT_PER_PAGE})"))),
            "per_page's description: {described}"
        );
    }
}
