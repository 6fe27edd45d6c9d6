//! Tests of `next_step`.

use super::*;
use crate::domain::phases::{Phase, PhaseStatus};
use crate::domain::run::{Hold, HoldKind, RunState};
use Environment::*;
use PhaseStatus::{Active, Blocked, Done, Pending, RolledBack};

fn phases(statuses: [PhaseStatus; 6]) -> Vec<(Phase, PhaseStatus)> {
    Phase::ALL.into_iter().zip(statuses).collect()
}

fn situation<'a>(env: Environment, phases: &'a [(Phase, PhaseStatus)]) -> Situation<'a> {
    Situation {
        env,
        phases,
        run: None,
        gate_closed: None,
        failed_items: &[],
        open_items: None,
        now_ms: 40_000,
    }
}

fn run(state: RunState) -> RunView {
    crate::domain::live::test_run(state)
}

#[test]
fn a_fresh_environment_starts_with_a_dry_run() {
    let p = phases([Pending, Pending, Pending, Pending, Pending, Pending]);
    let next = next_step(&situation(Dev, &p));
    assert_eq!(next.sentence, "Next: dry-run dev");
    assert_eq!(next.action, Some(Action::DryRun));
}

#[test]
fn after_the_dry_run_the_live_backfill_unless_its_gate_is_closed() {
    let p = phases([Done, Pending, Pending, Pending, Pending, Pending]);
    assert_eq!(next_step(&situation(Dev, &p)).action, Some(Action::StartBackfill));
    let gated = Situation {
        gate_closed: Some("dev must be verified first (it is pending)"),
        ..situation(Staging, &p)
    };
    let next = next_step(&gated);
    assert_eq!((next.kind, next.action), (StepKind::Blocked, None));
    assert_eq!(next.sentence, "Blocked: dev must be verified first (it is pending)");
}

#[test]
fn after_a_completed_backfill_the_next_step_is_verify_not_another_start() {
    let p = phases([Done, Done, Pending, Pending, Pending, Pending]);
    let next = next_step(&situation(Dev, &p));
    assert_eq!((next.sentence.as_str(), next.action), ("Next: verify dev", Some(Action::Verify)));
    let differs = phases([
        Done,
        Done,
        Blocked("the last verification found 2 ranges that differ".into()),
        Pending,
        Pending,
        Pending,
    ]);
    assert_eq!(next_step(&situation(Dev, &differs)).action, Some(Action::Reconcile));
}

#[test]
fn then_the_flag_then_the_checklist_then_done() {
    let p = phases([Done, Done, Done, Pending, Pending, Pending]);
    assert_eq!(next_step(&situation(Prod, &p)).sentence, "Next: turn ENABLE_STI on in prod");
    let p = phases([Done, Done, Done, Done, Active, Pending]);
    let open = Situation { open_items: Some((4, 9)), ..situation(Prod, &p) };
    assert_eq!(next_step(&open).sentence, "Next: sign prod's checklist (4 of 9 open)");
    let p = phases([Done, Done, Done, Done, Done, Done]);
    assert_eq!(next_step(&situation(Prod, &p)).kind, StepKind::Done);
}

#[test]
fn failed_checklist_items_block_by_name() {
    let p = phases([Done, Done, Done, Done, Blocked("2 checklist items failed".into()), Pending]);
    let failed = ["Contract tests".to_owned(), "Stakeholder sign-off".to_owned()];
    let named = Situation { failed_items: &failed, ..situation(Staging, &p) };
    assert_eq!(
        next_step(&named).sentence,
        "Blocked: 2 checklist items failed — Contract tests, Stakeholder sign-off"
    );
    assert_eq!(next_step(&situation(Staging, &p)).sentence, "Blocked: 2 checklist items failed");
}

#[test]
fn an_active_run_is_waited_for_resumed_or_taken_over_by_its_health() {
    let p = phases([Done, Active, Pending, Pending, Pending, Pending]);
    let running = run(RunState::Running);
    let next = next_step(&Situation { run: Some((&running, &Health::Running)), ..situation(Dev, &p) });
    assert_eq!((next.kind, next.sentence.as_str()), (StepKind::Wait, "Wait: backfill run #3 is running"));
    let paused = run(RunState::Paused);
    let next = next_step(&Situation { run: Some((&paused, &Health::Paused)), ..situation(Dev, &p) });
    assert_eq!(next.action, Some(Action::Resume));
    let lost = Health::RunnerLost { last_heard_ms: 0, lease_ends_ms: Some(30_000) };
    let next = next_step(&Situation { run: Some((&running, &lost)), ..situation(Dev, &p) });
    assert_eq!((next.kind, next.action), (StepKind::Next, Some(Action::TakeOver)));
    // before its lease runs out nobody may take it: the line says when
    let early = Situation { run: Some((&running, &lost)), now_ms: 25_500, ..situation(Dev, &p) };
    let next = next_step(&early);
    assert_eq!((next.kind, next.action), (StepKind::Wait, None));
    assert!(next.sentence.ends_with("when its lease runs out in 5 s"), "{}", next.sentence);
    let hold = Hold {
        kind: HoldKind::Waiting,
        reason: "database is locked".into(),
        label: "locked".into(),
        since_ms: 0,
        next_try_ms: 1,
        tries: 1,
        gives_up_at_ms: None,
    };
    let next = next_step(&Situation { run: Some((&running, &Health::Waiting(hold))), ..situation(Dev, &p) });
    assert_eq!(next.sentence, "Wait: backfill run #3 is waiting — database is locked");
}

#[test]
fn a_flag_turned_off_after_it_was_on_asks_for_it_again() {
    let p = phases([Done, Done, Done, RolledBack, Pending, Pending]);
    let next = next_step(&situation(Prod, &p));
    assert_eq!(next.action, Some(Action::FlagOn));
    assert!(next.sentence.contains("again"), "{}", next.sentence);
}
