//! Tests of `health`.

use super::*;

const LEASE: i64 = 30_000;

/// A backfill that started at 0, last wrote at `updated` and renewed its lease at `beat`.
fn run(state: RunState, updated: i64, beat: i64) -> RunView {
    RunView {
        updated_at: updated,
        finished_at: state.is_final().then_some(updated),
        lease_expires_at: Some(beat + LEASE),
        lease_ms: Some(LEASE),
        ..crate::domain::live::test_run(state)
    }
}

fn hold(kind: HoldKind, since: i64, next: i64) -> Hold {
    Hold {
        kind,
        reason: "database is locked".into(),
        label: "locked".into(),
        since_ms: since,
        next_try_ms: next,
        tries: 1,
        gives_up_at_ms: Some(since + 1_800_000),
    }
}

/// `n` chunks of 1 000 rows, one every `every` ms, each taking `ms`, the first committed at `at`.
fn chunks(n: i64, at: i64, every: i64, ms: i64) -> Vec<ChunkPoint> {
    (0..n)
        .map(|i| ChunkPoint {
            chunk_no: i + 1,
            from_id: i * 1000,
            to_id: (i + 1) * 1000,
            rows_read: 1000,
            school_created: 600,
            self_study_created: 400,
            errors: 0,
            duration_ms: ms,
            committed_at: at + i * every,
        })
        .collect()
}

#[test]
fn a_run_whose_runner_beats_is_running() {
    assert_eq!(Health::of(&run(RunState::Running, 50_000, 50_000), 52_000), Health::Running);
    // a long chunk: one period and the slack without a beat is still alive
    assert_eq!(Health::of(&run(RunState::Running, 50_000, 50_000), 64_000), Health::Running);
}

#[test]
fn a_runner_that_missed_its_heartbeat_is_lost_before_its_lease_runs_out() {
    let r = run(RunState::Running, 50_000, 50_000);
    let health = Health::of(&r, 66_000);
    assert_eq!(health, Health::RunnerLost { last_heard_ms: 50_000, lease_ends_ms: Some(80_000) });
    assert_eq!(health.label(), "runner lost");
    assert_eq!(
        health.describe(66_000, |ms| ms.to_string()),
        "runner lost: last heard from 16 s ago; its lease runs out in 14 s"
    );
    assert_eq!(
        Health::of(&r, 95_000).describe(95_000, |ms| ms.to_string()),
        "runner lost: last heard from 45 s ago; its lease has run out"
    );
    assert!(!health.is_moving());
}

#[test]
fn a_paused_run_whose_runner_is_gone_is_lost_too() {
    let r = run(RunState::Paused, 10_000, 50_000);
    assert_eq!(Health::of(&r, 55_000), Health::Paused);
    assert!(matches!(Health::of(&r, 70_000), Health::RunnerLost { .. }));
}

#[test]
fn a_run_waiting_on_its_database_is_waiting_while_its_hold_is_fresh() {
    let mut r = run(RunState::Running, 50_000, 50_000);
    r.hold = Some(hold(HoldKind::Waiting, 51_000, 120_000));
    // the lease is long gone, but the runner rewrites its hold at every try
    assert!(matches!(Health::of(&r, 110_000), Health::Waiting(_)));
    assert_eq!(Health::of(&r, 110_000).as_str(), "waiting");
    assert!(matches!(Health::of(&r, 120_000 + HOLD_GRACE_MS + 1), Health::RunnerLost { .. }));
    r.hold = Some(hold(HoldKind::Throttled, 51_000, 60_000));
    assert!(matches!(Health::of(&r, 55_000), Health::Throttled(_)));
}

#[test]
fn a_finished_run_is_what_it_ended_as_whatever_its_lease() {
    for (state, health) in [
        (RunState::Completed, Health::Completed),
        (RunState::Failed, Health::Failed),
        (RunState::Cancelled, Health::Cancelled),
    ] {
        assert_eq!(Health::of(&run(state, 1_000, 1_000), 10_000_000), health);
    }
}

#[test]
fn a_run_from_before_the_lease_length_was_kept_is_lost_when_its_lease_runs_out() {
    let mut r = run(RunState::Running, 50_000, 50_000);
    r.lease_ms = None;
    assert_eq!(Health::of(&r, 79_000), Health::Running);
    assert!(matches!(Health::of(&r, 81_000), Health::RunnerLost { .. }));
}

#[test]
fn every_health_has_a_metric_name() {
    let all = [
        Health::Queued,
        Health::Running,
        Health::Paused,
        Health::Waiting(hold(HoldKind::Waiting, 0, 0)),
        Health::Throttled(hold(HoldKind::Throttled, 0, 0)),
        Health::RunnerLost { last_heard_ms: 0, lease_ends_ms: None },
        Health::Completed,
        Health::Failed,
        Health::Cancelled,
    ];
    assert_eq!(all.map(|h| h.as_str()), Health::NAMES);
}

#[test]
fn only_a_moving_run_has_a_recent_rate_and_an_eta() {
    let ledger = chunks(10, 1_000, 1_000, 900);
    let r = run(RunState::Running, 11_000, 11_000);
    let pace = Pace::of(&r, &Health::Running, &ledger);
    assert!((pace.rows_per_second.unwrap() - 10_000.0 / 9.9).abs() < 1.0, "{pace:?}");
    assert!((pace.eta_seconds.unwrap() - 90_000.0 / (10_000.0 / 9.9)).abs() < 1.0, "{pace:?}");
    for health in [
        Health::Paused,
        Health::Waiting(hold(HoldKind::Waiting, 0, 0)),
        Health::RunnerLost { last_heard_ms: 0, lease_ends_ms: None },
    ] {
        assert_eq!(
            Pace::of(&r, &health, &ledger),
            Pace { rows_per_second: None, eta_seconds: None },
            "{health:?}"
        );
    }
}

#[test]
fn a_finished_run_shows_its_average_over_its_running_time_not_its_last_chunks() {
    // five chunks a second apart, a ten-minute pause, then five fast ones
    let mut ledger = chunks(5, 1_000, 1_000, 1_000);
    ledger.extend(chunks(5, 605_000, 100, 100));
    let r = run(RunState::Completed, 605_400, 605_400);
    let pace = Pace::of(&r, &Health::Completed, &ledger);
    // running: 5 × 1 s, then the gap counts as one chunk's 100 ms + 1 s slack, then 4 × 100 ms
    let running_s = 5.0 + 1.1 + 0.4;
    assert!((pace.rows_per_second.unwrap() - 10_000.0 / running_s).abs() < 1.0, "{pace:?}");
    assert_eq!(pace.eta_seconds, None);
    assert_eq!(Pace::of(&r, &Health::Completed, &[]).rows_per_second, None);
}

#[test]
fn the_eta_right_after_a_wait_keeps_the_pace_of_the_chunks() {
    // twenty chunks a second apart, a ten-minute wait on a locked database, then one more
    let mut ledger = chunks(20, 1_000, 1_000, 900);
    ledger.extend(chunks(1, 620_000, 1_000, 900).into_iter().map(|c| ChunkPoint {
        chunk_no: 21,
        from_id: 20_000,
        to_id: 21_000,
        ..c
    }));
    let before = Pace::of(&run(RunState::Running, 20_000, 20_000), &Health::Running, &ledger[..20]);
    let after = Pace::of(&run(RunState::Running, 620_000, 620_000), &Health::Running, &ledger);
    let (before, after) = (before.rows_per_second.unwrap(), after.rows_per_second.unwrap());
    assert!((after / before - 1.0).abs() < 0.15, "{before} rows/s before the wait, {after} after");
}
