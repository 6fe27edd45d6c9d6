//! The demo data: realistic, about 0.5% dirty in every way PRODUCT §2 names, the same on both engines.

use crate::support::{fresh_pg_database, open};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use sti_rollout::db::seed::{seed, SeedMode};
use sti_rollout::db::{Database, DatabaseUrl, Schema};
use sti_rollout::domain::study_type::{identify, LegacyFields, Rejection, StudyType};

/// One legacy row as text, so both engines compare equal.
type Row7 = (i64, String, Option<String>, Option<String>, Option<i64>, Option<String>, Option<String>);

async fn seeded(url: &DatabaseUrl, rows: i64) -> (Database, Vec<Row7>) {
    let db = open(url, Schema::Target).await;
    seed(&db, rows, SeedMode::Fresh, |_, _| {}).await.unwrap();
    let rows = sqlx::query(
        "select id, title, project_type, school_name, grade, pace, cast(goal_date as text) as goal_date
         from projects order by id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r.get("id"),
            r.get("title"),
            r.get("project_type"),
            r.get("school_name"),
            r.get::<Option<i32>, _>("grade").map(i64::from),
            r.get("pace"),
            r.get("goal_date"),
        )
    })
    .collect();
    (db, rows)
}

fn sqlite_url(dir: &tempfile::TempDir) -> DatabaseUrl {
    DatabaseUrl::sqlite_file(&dir.path().join("target.db"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_is_half_a_percent_dirty_in_every_way() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, rows) = seeded(&sqlite_url(&dir), 10_000).await;
    assert_eq!(rows.len(), 10_000);

    let mut types: BTreeMap<StudyType, usize> = BTreeMap::new();
    let mut rejections: BTreeMap<Rejection, usize> = BTreeMap::new();
    for (_, _, project_type, school_name, grade, pace, _) in &rows {
        let fields = LegacyFields {
            project_type: project_type.as_deref(),
            school_name: school_name.as_deref(),
            grade: *grade,
            pace: pace.as_deref(),
        };
        match identify(&fields) {
            Ok(t) => *types.entry(t).or_default() += 1,
            Err(r) => *rejections.entry(r).or_default() += 1,
        }
    }
    assert_eq!(rejections.values().sum::<usize>(), 50, "0.5% of 10,000: {rejections:?}");
    for reason in Rejection::ALL {
        assert_eq!(rejections.get(&reason), Some(&10), "{reason}: {rejections:?}");
    }
    let school_share = types[&StudyType::School] as f64 / 10_000.0;
    assert!((0.55..0.70).contains(&school_share), "school share {school_share}");

    let spellings: BTreeSet<Option<&str>> = rows.iter().map(|r| r.2.as_deref()).collect();
    for spelling in [Some("school"), Some("School"), Some("self-study"), Some("self_study"), Some(""), None] {
        assert!(spellings.contains(&spelling), "{spelling:?} missing from {spellings:?}");
    }
    let titles: BTreeSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert!(titles.len() > 300, "only {} distinct titles", titles.len());
    assert!(titles.contains("Essay on Shakespeare") || titles.iter().any(|t| t.starts_with("Learning ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_demo_data_equals_sqlite_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let (_, on_sqlite) = seeded(&sqlite_url(&dir), 2_500).await;
    let (_, on_postgres) = seeded(&fresh_pg_database().await, 2_500).await;
    assert_eq!(on_sqlite.len(), 2_500);
    assert!(on_sqlite == on_postgres, "the generator must give both engines the same rows");
}
