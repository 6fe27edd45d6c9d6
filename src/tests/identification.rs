//! The identification rule exists twice — in Rust (`domain::study_type::identify`) and in the
//! engine's set-based SQL — so it is checked over every combination of a wide set of field
//! values, on both engines — and the change capture, which runs the SQL in triggers, puts each
//! row, inserted or updated, where the Rust rule says.

use crate::support::{fresh_pg_database, open};
use sqlx::Row;
use sti_rollout::db::classify::classified;
use sti_rollout::db::{DatabaseUrl, Schema};
use sti_rollout::domain::study_type::{identify, LegacyFields, StudyType};

const TYPES: [Option<&str>; 14] = [
    Some("school"),
    Some("School"),
    Some(" school "),
    Some("SCHOOL"),
    Some("self-study"),
    Some("self_study"),
    Some("Self Study"),
    Some("self  study"),
    Some("selfstudy"),
    Some(""),
    Some("  "),
    None,
    Some("hobby"),
    Some("school-ish"),
];
const SCHOOLS: [Option<&str>; 5] = [None, Some(""), Some("  "), Some("Riverside"), Some(" Hillside High ")];
const GRADES: [Option<i64>; 7] = [None, Some(0), Some(1), Some(7), Some(13), Some(14), Some(-3)];
const PACES: [Option<&str>; 8] = [
    None,
    Some(""),
    Some(" "),
    Some("relaxed"),
    Some("Regular"),
    Some(" INTENSIVE "),
    Some("turbo"),
    Some("slow"),
];

fn expected(fields: &LegacyFields<'_>) -> String {
    match identify(fields) {
        Ok(StudyType::School) => "school".into(),
        Ok(StudyType::SelfStudy) => "self_study".into(),
        Err(reason) => format!("x:{}", reason.code()),
    }
}

async fn sql_and_rust_identify_every_combination_alike(url: DatabaseUrl) {
    let db = open(&url, Schema::Target).await;
    let mut rows = Vec::new();
    for t in TYPES {
        for s in SCHOOLS {
            for g in GRADES {
                for p in PACES {
                    rows.push(LegacyFields { project_type: t, school_name: s, grade: g, pace: p });
                }
            }
        }
    }
    sti_rollout::engine::capture::install(&db, std::time::Duration::from_secs(5)).await.unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    for (i, row) in rows.iter().enumerate() {
        sqlx::query(
            "insert into projects (id, title, owner_id, project_type, school_name, grade, pace, created_at, updated_at)
             values ($1, 'generated', 1, $2, $3, $4, $5, '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')",
        )
        .bind(i as i64 + 1)
        .bind(row.project_type)
        .bind(row.school_name)
        .bind(row.grade.map(|g| g as i32))
        .bind(row.pace)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let verdicts = sqlx::query(&format!("select id, verdict from {} c order by id", classified()))
        .bind(0_i64)
        .bind(rows.len() as i64)
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(verdicts.len(), rows.len());
    let mut disagreements = Vec::new();
    for (row, fields) in verdicts.iter().zip(&rows) {
        let sql: String = row.get("verdict");
        if sql != expected(fields) {
            disagreements.push(format!("{fields:?}: sql {sql}, rust {}", expected(fields)));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} disagree:\n{}",
        disagreements.len(),
        rows.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
    captured_where_rust_says(&db, &rows, 0).await;

    // every row updated into another combination: the capture moves it
    let shift = 7;
    let mut tx = db.pool().begin().await.unwrap();
    for i in 0..rows.len() {
        let row = &rows[(i + shift) % rows.len()];
        sqlx::query(
            "update projects set project_type = $1, school_name = $2, grade = $3, pace = $4 where id = $5",
        )
        .bind(row.project_type)
        .bind(row.school_name)
        .bind(row.grade.map(|g| g as i32))
        .bind(row.pace)
        .bind(i as i64 + 1)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    captured_where_rust_says(&db, &rows, shift).await;
}

/// Row `i + 1` holds the fields of `rows[(i + shift) % n]`: it must be in the subtype table the
/// Rust rule names, and only there (in neither when it is rejected).
async fn captured_where_rust_says(db: &sti_rollout::db::Database, rows: &[LegacyFields<'_>], shift: usize) {
    let placed = sqlx::query(
        "select p.id, case when s.project_id is not null then 1 else 0 end as school,
                case when t.project_id is not null then 1 else 0 end as self_study
         from projects p left join school_projects s on s.project_id = p.id
         left join self_study_projects t on t.project_id = p.id order by p.id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut wrong = Vec::new();
    for (i, row) in placed.iter().enumerate() {
        let fields = &rows[(i + shift) % rows.len()];
        let place = match (row.get::<i64, _>("school"), row.get::<i64, _>("self_study")) {
            (1, 0) => "school",
            (0, 1) => "self_study",
            (0, 0) => "none",
            _ => "both",
        };
        let want = match identify(fields) {
            Ok(StudyType::School) => "school",
            Ok(StudyType::SelfStudy) => "self_study",
            Err(_) => "none",
        };
        if place != want {
            wrong.push(format!("{fields:?}: captured into {place}, rust says {want}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} misplaced (shift {shift}):\n{}",
        wrong.len(),
        rows.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sql_and_rust_identify_every_combination_alike() {
    let dir = tempfile::tempdir().unwrap();
    sql_and_rust_identify_every_combination_alike(DatabaseUrl::sqlite_file(&dir.path().join("t.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sql_and_rust_identify_every_combination_alike() {
    sql_and_rust_identify_every_combination_alike(fresh_pg_database().await).await;
}
