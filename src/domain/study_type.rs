//! Study type identification (PRODUCT §2): which subtype a legacy `projects` row becomes,
//! or why it cannot become one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The subtype a legacy project is split into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StudyType {
    School,
    SelfStudy,
}

impl StudyType {
    pub const ALL: [StudyType; 2] = [StudyType::School, StudyType::SelfStudy];

    /// The label used in metrics and reports (`school`, `self_study`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::School => "school",
            Self::SelfStudy => "self_study",
        }
    }
}

/// Why a legacy row cannot be given a study type: it goes to the dead-letter table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// No recognisable type, and both a school name and a pace.
    Ambiguous,
    /// No recognisable type, and neither a school name nor a pace.
    Unidentifiable,
    /// A school project whose grade is outside [`MIN_GRADE`]–[`MAX_GRADE`].
    GradeOutOfRange,
    /// A project typed as school that names no school.
    MissingSchoolName,
    /// A self-study project whose pace is not relaxed, regular or intensive.
    UnknownPace,
}

impl Rejection {
    pub const ALL: [Rejection; 5] = [
        Rejection::Ambiguous,
        Rejection::Unidentifiable,
        Rejection::GradeOutOfRange,
        Rejection::MissingSchoolName,
        Rejection::UnknownPace,
    ];

    /// The stable reason code stored with a dead letter.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ambiguous => "ambiguous",
            Self::Unidentifiable => "unidentifiable",
            Self::GradeOutOfRange => "grade_out_of_range",
            Self::MissingSchoolName => "missing_school_name",
            Self::UnknownPace => "unknown_pace",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The fields of a legacy row that decide its study type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyFields<'a> {
    pub project_type: Option<&'a str>,
    pub school_name: Option<&'a str>,
    pub grade: Option<i64>,
    pub pace: Option<&'a str>,
}

/// The paces a self-study project may have.
pub const PACES: [&str; 3] = ["relaxed", "regular", "intensive"];

/// The grades a school project may have (none is fine too).
pub const MIN_GRADE: i64 = 1;
pub const MAX_GRADE: i64 = 13;

/// The paces in words: `relaxed, regular or intensive`.
pub fn paces_in_words() -> String {
    let (last, rest) = PACES.split_last().expect("there are paces");
    format!("{} or {last}", rest.join(", "))
}

/// The paces as an SQL list: `'relaxed', 'regular', 'intensive'`.
pub fn paces_in_sql() -> String {
    PACES.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
}

/// Identifies the study type of a legacy row: a recognisable `project_type` wins; otherwise a
/// school name means school and a pace means self-study; anything else is rejected.
pub fn identify(row: &LegacyFields<'_>) -> Result<StudyType, Rejection> {
    let has_school = present(row.school_name);
    let has_pace = present(row.pace);
    let study_type = match recognise(row.project_type) {
        Some(study_type) => study_type,
        None => match (has_school, has_pace) {
            (true, false) => StudyType::School,
            (false, true) => StudyType::SelfStudy,
            (true, true) => return Err(Rejection::Ambiguous),
            (false, false) => return Err(Rejection::Unidentifiable),
        },
    };
    match study_type {
        StudyType::School if !has_school => Err(Rejection::MissingSchoolName),
        StudyType::School if row.grade.is_some_and(|g| !(MIN_GRADE..=MAX_GRADE).contains(&g)) => {
            Err(Rejection::GradeOutOfRange)
        }
        StudyType::SelfStudy if has_pace && normalised_pace(row.pace).is_none() => {
            Err(Rejection::UnknownPace)
        }
        _ => Ok(study_type),
    }
}

/// The legacy free-text type, if it names a study type (`school`, `School`, `self-study`, …).
fn recognise(project_type: Option<&str>) -> Option<StudyType> {
    let normalised = trim_spaces(project_type?).to_ascii_lowercase().replace(['-', ' '], "_");
    match normalised.as_str() {
        "school" => Some(StudyType::School),
        "self_study" => Some(StudyType::SelfStudy),
        _ => None,
    }
}

/// The pace in its canonical spelling, if it is one of [`PACES`].
pub fn normalised_pace(pace: Option<&str>) -> Option<&'static str> {
    let pace = trim_spaces(pace?).to_ascii_lowercase();
    PACES.into_iter().find(|known| *known == pace)
}

fn present(value: Option<&str>) -> bool {
    value.is_some_and(|v| !trim_spaces(v).is_empty())
}

/// SQL's `trim()` removes spaces only; the engine's SQL and this function must agree.
fn trim_spaces(value: &str) -> &str {
    value.trim_matches(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(
        project_type: Option<&'a str>,
        school_name: Option<&'a str>,
        grade: Option<i64>,
        pace: Option<&'a str>,
    ) -> LegacyFields<'a> {
        LegacyFields { project_type, school_name, grade, pace }
    }

    #[test]
    fn every_legacy_spelling_of_a_type_is_recognised() {
        for spelling in ["school", "School", " SCHOOL "] {
            let r = row(Some(spelling), Some("Hillside High"), Some(9), None);
            assert_eq!(identify(&r), Ok(StudyType::School), "{spelling}");
        }
        for spelling in ["self-study", "self_study", "Self Study"] {
            let r = row(Some(spelling), None, None, Some("regular"));
            assert_eq!(identify(&r), Ok(StudyType::SelfStudy), "{spelling}");
        }
    }

    #[test]
    fn a_recognisable_type_wins_over_the_other_fields() {
        let r = row(Some("self_study"), Some("Hillside High"), None, Some("relaxed"));
        assert_eq!(identify(&r), Ok(StudyType::SelfStudy));
    }

    #[test]
    fn without_a_type_a_school_name_means_school_and_a_pace_means_self_study() {
        assert_eq!(identify(&row(None, Some("Riverside"), None, None)), Ok(StudyType::School));
        assert_eq!(identify(&row(Some(""), None, None, Some("intensive"))), Ok(StudyType::SelfStudy));
        assert_eq!(identify(&row(Some("hobby"), None, None, Some("relaxed"))), Ok(StudyType::SelfStudy));
    }

    #[test]
    fn both_or_neither_without_a_type_is_rejected() {
        let both = row(None, Some("Riverside"), None, Some("relaxed"));
        assert_eq!(identify(&both), Err(Rejection::Ambiguous));
        assert_eq!(identify(&row(Some(" "), Some(" "), None, None)), Err(Rejection::Unidentifiable));
    }

    #[test]
    fn a_school_row_needs_a_school_name_and_a_grade_in_range() {
        assert_eq!(identify(&row(Some("school"), None, Some(3), None)), Err(Rejection::MissingSchoolName));
        for grade in [0, 14, -1] {
            let r = row(Some("school"), Some("Riverside"), Some(grade), None);
            assert_eq!(identify(&r), Err(Rejection::GradeOutOfRange), "grade {grade}");
        }
        for grade in [1, 13] {
            let r = row(None, Some("Riverside"), Some(grade), None);
            assert_eq!(identify(&r), Ok(StudyType::School), "grade {grade}");
        }
    }

    #[test]
    fn a_self_study_row_with_an_unknown_pace_is_rejected_but_a_missing_pace_is_not() {
        assert_eq!(
            identify(&row(Some("self-study"), None, None, Some("turbo"))),
            Err(Rejection::UnknownPace)
        );
        assert_eq!(identify(&row(Some("self-study"), None, None, None)), Ok(StudyType::SelfStudy));
        assert_eq!(normalised_pace(Some(" Regular ")), Some("regular"));
    }
}
