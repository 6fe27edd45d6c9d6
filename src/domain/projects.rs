//! The projects API's model (PRODUCT §5): one JSON shape for a project whichever mode serves it,
//! what a client may write, and how a legacy row (and its subtype row) becomes that shape.
//!
//! The shape is the legacy row as the backfill splits it: its identified study type and that
//! subtype's fields, normalised as the backfill copies them (a pace trimmed and lower-cased).
//! So legacy mode (identification on the fly) and STI mode (the subtype row) answer the same
//! JSON for the same data, and a row the backfill has not reached reads the same in both.

use super::calendar::Day;
use super::study_type::{
    identify, normalised_pace, paces_in_words, LegacyFields, StudyType, MAX_GRADE, MIN_GRADE, PACES,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A project as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Project {
    #[cfg_attr(feature = "ssr", schema(minimum = 1))]
    pub id: i64,
    pub title: String,
    pub owner_id: i64,
    /// `null` for a legacy row whose study type cannot be identified (one the backfill rejects);
    /// its fields are then shown as stored.
    pub study_type: Option<StudyType>,
    /// School projects: the school.
    pub school_name: Option<String>,
    /// School projects: the grade.
    pub grade: Option<i64>,
    /// Self-study projects: `relaxed`, `regular` or `intensive`.
    pub pace: Option<String>,
    /// Self-study projects: the goal date, `YYYY-MM-DD`.
    pub goal_date: Option<String>,
    /// When the project was created (UTC, RFC 3339).
    pub created_at: String,
    /// When it last changed (UTC, RFC 3339).
    pub updated_at: String,
}

/// A legacy `projects` row, as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyRow {
    pub id: i64,
    pub title: String,
    pub owner_id: i64,
    pub project_type: Option<String>,
    pub school_name: Option<String>,
    pub grade: Option<i64>,
    pub pace: Option<String>,
    pub goal_date: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A project's row in a subtype table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubtypeRow {
    School { school_name: String, grade: Option<i64> },
    SelfStudy { pace: Option<String>, goal_date: Option<String> },
}

impl Project {
    /// Legacy mode: the study type identified from the legacy columns, and that subtype's fields
    /// as the backfill would copy them; a row that cannot be identified shows its fields as stored.
    pub fn from_legacy(row: LegacyRow) -> Project {
        let fields = LegacyFields {
            project_type: row.project_type.as_deref(),
            school_name: row.school_name.as_deref(),
            grade: row.grade,
            pace: row.pace.as_deref(),
        };
        match identify(&fields) {
            Ok(StudyType::School) => {
                let subtype = SubtypeRow::School {
                    school_name: row.school_name.clone().unwrap_or_default(),
                    grade: row.grade,
                };
                Project::with_subtype(row, subtype)
            }
            Ok(StudyType::SelfStudy) => {
                let subtype = SubtypeRow::SelfStudy {
                    pace: normalised_pace(row.pace.as_deref()).map(str::to_owned),
                    goal_date: row.goal_date.clone(),
                };
                Project::with_subtype(row, subtype)
            }
            Err(_) => Project {
                id: row.id,
                title: row.title,
                owner_id: row.owner_id,
                study_type: None,
                school_name: row.school_name,
                grade: row.grade,
                pace: row.pace,
                goal_date: row.goal_date,
                created_at: row.created_at,
                updated_at: row.updated_at,
            },
        }
    }

    /// STI mode: the subtype row when there is one; a row the backfill has not reached (or
    /// rejected) reads as legacy mode shows it.
    pub fn from_sti(row: LegacyRow, subtype: Option<SubtypeRow>) -> Project {
        match subtype {
            Some(subtype) => Project::with_subtype(row, subtype),
            None => Project::from_legacy(row),
        }
    }

    fn with_subtype(row: LegacyRow, subtype: SubtypeRow) -> Project {
        let (study_type, school_name, grade, pace, goal_date) = match subtype {
            SubtypeRow::School { school_name, grade } => {
                (StudyType::School, Some(school_name), grade, None, None)
            }
            SubtypeRow::SelfStudy { pace, goal_date } => (StudyType::SelfStudy, None, None, pace, goal_date),
        };
        Project {
            id: row.id,
            title: row.title,
            owner_id: row.owner_id,
            study_type: Some(study_type),
            school_name,
            grade,
            pace,
            goal_date,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of projects, oldest id first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectPage {
    pub items: Vec<Project>,
    pub page: i64,
    pub per_page: i64,
    /// The next page's number, `null` on the last page.
    pub next_page: Option<i64>,
}

/// The largest page number and page size a list accepts.
pub const MAX_PAGE: i64 = 100_000;
pub const MAX_PER_PAGE: i64 = 100;
pub const DEFAULT_PER_PAGE: i64 = 20;
/// Titles and school names are 1–200 characters, not all blank.
pub const MAX_TEXT: usize = 200;
/// Owner ids are 1 ..= 2^31 − 1.
pub const MAX_OWNER_ID: i64 = 2_147_483_647;

/// A project as a client writes it (create, or replace with `PUT`), checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProject {
    pub title: String,
    pub owner_id: i64,
    pub subtype: SubtypeRow,
}

impl NewProject {
    pub fn study_type(&self) -> StudyType {
        match self.subtype {
            SubtypeRow::School { .. } => StudyType::School,
            SubtypeRow::SelfStudy { .. } => StudyType::SelfStudy,
        }
    }
}

/// What is wrong with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field, or `body` for the whole request body.
    pub field: String,
    pub reason: String,
}

fn field_error(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError { field: field.to_owned(), reason: reason.into() }
}

/// Checks a request body; every problem is reported, each with its field.
pub fn validate(body: &Value) -> Result<NewProject, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![field_error("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let study_type = match object.get("study_type") {
        None => {
            errors.push(field_error("study_type", "is required: school or self_study"));
            None
        }
        Some(Value::String(s)) if s == "school" => Some(StudyType::School),
        Some(Value::String(s)) if s == "self_study" => Some(StudyType::SelfStudy),
        Some(_) => {
            errors.push(field_error("study_type", "must be school or self_study"));
            None
        }
    };
    let allowed: &[&str] = match study_type {
        Some(StudyType::School) => &["study_type", "title", "owner_id", "school_name", "grade"],
        Some(StudyType::SelfStudy) => &["study_type", "title", "owner_id", "pace", "goal_date"],
        None => &["study_type", "title", "owner_id", "school_name", "grade", "pace", "goal_date"],
    };
    for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let reason = match study_type {
            Some(t) if ["school_name", "grade", "pace", "goal_date"].contains(&key.as_str()) => {
                format!("is not a field of a {} project", t.as_str())
            }
            _ => "is not a field of a project".to_owned(),
        };
        errors.push(field_error(key, reason));
    }
    let title = text(object, "title", &mut errors);
    let owner_id = integer(object, "owner_id", 1, MAX_OWNER_ID, true, &mut errors);
    let subtype = match study_type {
        Some(StudyType::School) => {
            let school_name = text(object, "school_name", &mut errors);
            let grade = integer(object, "grade", MIN_GRADE, MAX_GRADE, false, &mut errors);
            school_name.map(|school_name| SubtypeRow::School { school_name, grade })
        }
        Some(StudyType::SelfStudy) => {
            let pace = match object.get("pace") {
                Some(Value::String(p)) if PACES.contains(&p.as_str()) => Some(p.clone()),
                None => {
                    errors.push(field_error("pace", format!("is required: {}", paces_in_words())));
                    None
                }
                Some(_) => {
                    errors.push(field_error("pace", format!("must be {}", paces_in_words())));
                    None
                }
            };
            let goal_date = match object.get("goal_date") {
                None | Some(Value::Null) => None,
                Some(Value::String(d)) if is_date(d) => Some(d.clone()),
                Some(_) => {
                    errors.push(field_error("goal_date", "must be a date, YYYY-MM-DD, or null"));
                    None
                }
            };
            pace.map(|pace| SubtypeRow::SelfStudy { pace: Some(pace), goal_date })
        }
        None => None,
    };
    match (title, owner_id, subtype) {
        (Some(title), Some(owner_id), Some(subtype)) if errors.is_empty() => {
            Ok(NewProject { title, owner_id, subtype })
        }
        _ => Err(errors),
    }
}

/// A required text field: 1–200 characters, not all blank.
fn text(object: &Map<String, Value>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match object.get(field) {
        Some(Value::String(s)) if is_blank(s) => errors.push(field_error(field, "must not be blank")),
        Some(Value::String(s)) if s.chars().count() > MAX_TEXT => {
            errors.push(field_error(field, format!("must be at most {MAX_TEXT} characters")))
        }
        Some(Value::String(s)) => return Some(s.clone()),
        None => errors.push(field_error(field, "is required")),
        Some(_) => errors.push(field_error(field, "must be a string")),
    }
    None
}

/// An integer field in `min..=max`; a missing or null optional one is `None`.
fn integer(
    object: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let value = match object.get(field) {
        None | Some(Value::Null) if !required => return None,
        None => {
            errors.push(field_error(field, "is required"));
            return None;
        }
        Some(value) => value,
    };
    // JSON has one number type: 7.0 is the integer 7
    let number = value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
    match number {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errors.push(field_error(field, format!("must be an integer from {min} to {max}")));
            None
        }
    }
}

/// Blank as the schema's `\S` pattern sees it: JSON Schema patterns are ECMA-262 regular
/// expressions, whose `\s` is this set (not Rust's `char::is_whitespace`: U+0085 is not in it,
/// U+FEFF is).
fn is_blank(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\u{9}'..='\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}')
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}')
    })
}

/// A real calendar date written `YYYY-MM-DD`, years 0001–9999.
pub fn is_date(s: &str) -> bool {
    Day::parse_exact(s).is_some()
}

#[cfg(test)]
mod tests;
