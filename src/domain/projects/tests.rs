//! Tests of `projects`.

use super::*;
use serde_json::json;

fn legacy(
    project_type: Option<&str>,
    school: Option<&str>,
    grade: Option<i64>,
    pace: Option<&str>,
) -> LegacyRow {
    LegacyRow {
        id: 7,
        title: "Algebra".into(),
        owner_id: 3,
        project_type: project_type.map(str::to_owned),
        school_name: school.map(str::to_owned),
        grade,
        pace: pace.map(str::to_owned),
        goal_date: Some("2027-03-01".into()),
        created_at: "2023-01-01T00:00:00Z".into(),
        updated_at: "2023-01-02T00:00:00Z".into(),
    }
}

#[test]
fn legacy_mode_shows_what_the_backfill_would_write() {
    let school = Project::from_legacy(legacy(Some("School"), Some("Hill School"), Some(7), Some("regular")));
    assert_eq!(school.study_type, Some(StudyType::School));
    assert_eq!((school.school_name.as_deref(), school.grade), (Some("Hill School"), Some(7)));
    assert_eq!((school.pace, school.goal_date), (None, None));

    let self_study = Project::from_legacy(legacy(Some("self-study"), None, None, Some(" Intensive ")));
    assert_eq!(self_study.study_type, Some(StudyType::SelfStudy));
    assert_eq!(self_study.pace.as_deref(), Some("intensive"));
    assert_eq!(self_study.goal_date.as_deref(), Some("2027-03-01"));
    assert_eq!(self_study.school_name, None);

    let rejected = Project::from_legacy(legacy(None, Some("Hill School"), None, Some("regular")));
    assert_eq!(rejected.study_type, None);
    assert_eq!(rejected.school_name.as_deref(), Some("Hill School"));
    assert_eq!(rejected.pace.as_deref(), Some("regular"));
}

#[test]
fn sti_mode_reads_the_subtype_row_and_falls_back_to_legacy_mode() {
    let row = legacy(Some("school"), Some("Hill School"), Some(7), None);
    let backfilled = SubtypeRow::School { school_name: "Hill School".into(), grade: Some(7) };
    assert_eq!(Project::from_sti(row.clone(), Some(backfilled)), Project::from_legacy(row.clone()));
    assert_eq!(Project::from_sti(row.clone(), None), Project::from_legacy(row));
    let rejected = legacy(Some(""), None, None, None);
    assert_eq!(Project::from_sti(rejected.clone(), None), Project::from_legacy(rejected));
}

#[test]
fn a_valid_body_of_each_study_type_is_accepted() {
    let school = validate(
        &json!({"study_type": "school", "title": "Algebra", "owner_id": 3, "school_name": "Hill", "grade": 7.0}),
    );
    assert_eq!(
        school,
        Ok(NewProject {
            title: "Algebra".into(),
            owner_id: 3,
            subtype: SubtypeRow::School { school_name: "Hill".into(), grade: Some(7) }
        })
    );
    let self_study = validate(
        &json!({"study_type": "self_study", "title": "Go", "owner_id": 1, "pace": "relaxed", "goal_date": "2028-02-29"}),
    );
    assert_eq!(self_study.map(|p| p.study_type()), Ok(StudyType::SelfStudy));
    let no_date = validate(
        &json!({"study_type": "self_study", "title": "Go", "owner_id": 1, "pace": "regular", "goal_date": null}),
    );
    assert!(no_date.is_ok());
    // blank means ECMA-262's `\s`, the schema's regular expressions' whitespace
    let odd_title =
        validate(&json!({"study_type": "school", "title": "\u{1e}", "owner_id": 1, "school_name": "\u{85}"}));
    assert!(odd_title.is_ok(), "{odd_title:?}");
}

#[test]
fn every_problem_is_reported_with_its_field() {
    let fields = |body: Value| -> Vec<String> {
        validate(&body).err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    };
    assert_eq!(fields(json!([1])), ["body"]);
    assert_eq!(fields(json!({})), ["study_type", "title", "owner_id"]);
    assert_eq!(
        fields(
            json!({"study_type": "school", "title": " \u{feff}\u{3000}", "owner_id": 0, "school_name": 5, "grade": 14, "pace": "regular"})
        ),
        ["pace", "title", "owner_id", "school_name", "grade"]
    );
    assert_eq!(
        fields(
            json!({"study_type": "self_study", "title": "x".repeat(201), "owner_id": 2147483648_i64, "pace": "turbo", "goal_date": "2027-02-29"})
        ),
        ["title", "owner_id", "pace", "goal_date"]
    );
    assert_eq!(fields(json!({"study_type": "School", "title": "t", "owner_id": 1})), ["study_type"]);
    assert_eq!(
        fields(json!({"study_type": "school", "title": "t", "owner_id": 1.5, "school_name": "s"})),
        ["owner_id"]
    );
}

#[test]
fn dates_are_real_calendar_days() {
    for good in ["2028-02-29", "0001-01-01", "9999-12-31", "2027-04-30"] {
        assert!(is_date(good), "{good}");
    }
    for bad in [
        "2027-02-29",
        "0000-01-01",
        "2027-13-01",
        "2027-04-31",
        "2027-4-30",
        "20270430",
        "2027-04-3a",
        "+027-04-30",
    ] {
        assert!(!is_date(bad), "{bad}");
    }
}
