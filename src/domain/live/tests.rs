//! Tests of `live`.

use super::*;

fn chunk(n: i64, size: i64, ms: i64) -> ChunkPoint {
    ChunkPoint {
        chunk_no: n,
        from_id: (n - 1) * size,
        to_id: n * size,
        rows_read: size,
        school_created: size / 2,
        self_study_created: size / 2 - 1,
        errors: 1,
        duration_ms: ms,
        committed_at: 1_000 + n * ms,
    }
}

fn run(state: RunState, checkpoint: i64, high: i64) -> RunView {
    RunView {
        id: 1,
        kind: RunKind::Backfill,
        state,
        requested: None,
        started_by: "user:ana".into(),
        chunk_size: 100,
        pause_ms: 0,
        low_id: 0,
        high_id: high,
        checkpoint,
        chunks: 0,
        rows_read: 0,
        school_created: 0,
        self_study_created: 0,
        school_skipped: 0,
        self_study_skipped: 0,
        errors: 0,
        error: None,
        created_at: 1_000,
        updated_at: 2_000,
        finished_at: None,
        lease_expires_at: Some(5_000),
        lease_ms: None,
        hold: None,
        rows_expected: None,
        workers: 1,
        fk_validation_ms: None,
    }
}

#[test]
fn a_thousand_chunks_become_at_most_the_chart_budget_and_keep_the_totals() {
    let chunks: Vec<_> = (1..=1000).map(|n| chunk(n, 1000, 10)).collect();
    let points = chart_points(1_000, &chunks, MAX_CHART_POINTS);
    assert!(points.len() <= MAX_CHART_POINTS && points.len() >= MAX_CHART_POINTS / 2, "{}", points.len());
    let last = points.last().unwrap();
    assert_eq!(last.school, 500 * 1000);
    assert_eq!(last.self_study, 499 * 1000);
    assert!((last.seconds - 10.0).abs() < 1e-9);
    // 1000 rows every 10 ms
    assert!(points.iter().all(|p| (p.rows_per_second - 100_000.0).abs() < 1.0), "{points:?}");
    assert!(points.iter().all(|p| (p.chunk_ms - 10.0).abs() < 1e-9));
    assert!(points.windows(2).all(|w| w[0].seconds < w[1].seconds && w[0].school <= w[1].school));
}

#[test]
fn few_chunks_are_drawn_one_by_one_and_none_draws_nothing() {
    let chunks: Vec<_> = (1..=3).map(|n| chunk(n, 10, 5)).collect();
    assert_eq!(chart_points(1_000, &chunks, MAX_CHART_POINTS).len(), 3);
    assert!(chart_points(1_000, &[], MAX_CHART_POINTS).is_empty());
}

#[test]
fn a_pause_shows_as_a_slower_group_not_as_faster_chunks() {
    let mut chunks: Vec<_> = (1..=2).map(|n| chunk(n, 100, 10)).collect();
    chunks[1].committed_at += 990; // paused for about a second before the second chunk
    let points = chart_points(1_000, &chunks, 10);
    assert!(points[1].rows_per_second < 110.0, "{points:?}");
    assert!((points[1].chunk_ms - 10.0).abs() < 1e-9);
}

#[test]
fn eta_comes_from_the_recent_pace_and_only_while_running() {
    use crate::domain::health::{Health, Pace};
    let chunks: Vec<_> = (1..=10).map(|n| chunk(n, 100, 10)).collect();
    let pace = Pace::of(&run(RunState::Running, 1_000, 2_000), &Health::Running, &chunks);
    assert!((pace.rows_per_second.unwrap() - 10_000.0).abs() < 1.0, "{pace:?}");
    assert!((pace.eta_seconds.unwrap() - 0.1).abs() < 1e-6, "1000 keys left at 10 000 keys/s: {pace:?}");
    let paused = Pace::of(&run(RunState::Paused, 1_000, 2_000), &Health::Paused, &chunks);
    assert_eq!(paused.eta_seconds, None);
    assert_eq!(Pace::of(&run(RunState::Running, 0, 2_000), &Health::Running, &[]).rows_per_second, None);
}

#[test]
fn with_sparse_keys_the_eta_counts_rows_left() {
    use crate::domain::health::{Health, Pace};
    // 10 chunks of 100 rows at 10 000 rows/s; 1 000 of 2 001 rows done, the last id 10^12
    let chunks: Vec<_> = (1..=10).map(|n| chunk(n, 100, 10)).collect();
    let mut sparse = run(RunState::Running, 1_000, 1_000_000_000_000);
    sparse.rows_read = 1_000;
    let by_keys = Pace::of(&sparse, &Health::Running, &chunks).eta_seconds;
    assert!(by_keys.unwrap() > 1e6, "the keys left say weeks: {by_keys:?}");
    sparse.rows_expected = Some(2_001);
    let by_rows = Pace::of(&sparse, &Health::Running, &chunks).eta_seconds;
    assert!((by_rows.unwrap() - 0.1001).abs() < 1e-6, "1 001 rows left at 10 000 rows/s: {by_rows:?}");
    assert!((sparse.progress().fraction() - 1_000.0 / 2_001.0).abs() < 1e-9);
}

#[test]
fn a_run_whose_lease_ran_out_can_be_taken_over_once_it_is_active() {
    let r = run(RunState::Running, 0, 10);
    assert!(!r.runner_gone(4_999) && r.runner_gone(5_001));
    assert!(!run(RunState::Completed, 10, 10).runner_gone(9_999));
}

#[test]
fn keys_off_say_why_and_what_puts_them_back() {
    assert_eq!(keys_off_notice(&[], None), None);
    let keys = ["school_projects".to_owned(), "self_study_projects".to_owned()];
    let during = keys_off_notice(&keys, Some(7)).unwrap();
    assert!(during.starts_with("Foreign keys off for run #7's copy"), "{during}");
    let left = keys_off_notice(&keys, None).unwrap();
    assert!(left.contains("could not be put back yet"), "{left}");
    assert!(left.contains("those of school_projects and self_study_projects to projects"), "{left}");
    assert!(left.contains("not checked against projects"), "{left}");
}

#[test]
fn a_stretch_where_nothing_ran_breaks_the_charts_line() {
    let mut chunks: Vec<_> = (1..=4).map(|n| chunk(n, 100, 50)).collect();
    // the runner was gone for half a minute before the third chunk
    for c in &mut chunks[2..] {
        c.committed_at += 30_000;
    }
    let points = chart_points(1_000, &chunks, MAX_CHART_POINTS);
    let gaps: Vec<bool> = points.iter().map(|p| p.gap_before).collect();
    assert_eq!(gaps, [false, false, true, false]);
}
