//! Tests of `phases`.

use super::PhaseStatus::*;
use super::*;

fn run(id: i64, kind: RunKind, state: RunState, finished_at: Option<i64>) -> RunFact {
    RunFact { id, kind, state, finished_at, error: None }
}

fn status(facts: &Facts, phase: Phase) -> PhaseStatus {
    derive(facts).into_iter().find(|(p, _)| *p == phase).map(|(_, s)| s).unwrap()
}

fn backfilled() -> Facts {
    Facts {
        last_dry_run_at: Some(10),
        runs: vec![run(1, RunKind::Backfill, RunState::Completed, Some(100))],
        ..Facts::default()
    }
}

fn verified_with_flag(signed: usize) -> Facts {
    let mut facts = backfilled();
    facts.last_verification = Some((true, 150, 0));
    facts.flag_on = true;
    facts.flag_was_ever_on = true;
    facts.checklist_total = 9;
    facts.checklist_signed = signed;
    facts
}

#[test]
fn dev_has_no_gate_staging_needs_dev_verified_with_its_flag_on() {
    assert_eq!(backfill_gate(Environment::Dev, &[]), Ok(()));
    let closed = backfill_gate(Environment::Staging, &derive(&Facts::default())).unwrap_err();
    assert_eq!(closed, "dev must be verified first (it is pending)");
    let mut dev = verified_with_flag(0);
    dev.flag_on = false;
    let closed = backfill_gate(Environment::Staging, &derive(&dev)).unwrap_err();
    assert_eq!(closed, "dev must be running with ENABLE_STI on first (it is turned off)");
    assert_eq!(backfill_gate(Environment::Staging, &derive(&verified_with_flag(0))), Ok(()));
}

#[test]
fn prod_needs_staging_verified_and_its_checklist_signed() {
    let closed = backfill_gate(Environment::Prod, &derive(&verified_with_flag(8))).unwrap_err();
    assert_eq!(closed, "staging must be signed off on its checklist first (it is active)");
    let mut failing = verified_with_flag(8);
    failing.checklist_failed = 1;
    let closed = backfill_gate(Environment::Prod, &derive(&failing)).unwrap_err();
    assert!(closed.contains("1 checklist items failed"), "{closed}");
    assert_eq!(backfill_gate(Environment::Prod, &derive(&verified_with_flag(9))), Ok(()));
}

#[test]
fn nothing_happened_yet_everything_is_pending() {
    let phases = derive(&Facts::default());
    assert!(phases.iter().all(|(_, s)| *s == Pending), "{phases:?}");
    assert_eq!(current(&phases), Phase::DryRun);
}

#[test]
fn a_dry_run_finishes_the_first_phase() {
    let facts = Facts { last_dry_run_at: Some(5), ..Facts::default() };
    assert_eq!(status(&facts, Phase::DryRun), Done);
    assert_eq!(current(&derive(&facts)), Phase::Backfill);
}

#[test]
fn a_running_or_paused_backfill_is_active_and_a_completed_one_is_done() {
    for state in [RunState::Queued, RunState::Running, RunState::Paused] {
        let facts = Facts { runs: vec![run(1, RunKind::Backfill, state, None)], ..Facts::default() };
        assert_eq!(status(&facts, Phase::Backfill), Active, "{state}");
    }
    assert_eq!(status(&backfilled(), Phase::Backfill), Done);
}

#[test]
fn a_failed_or_cancelled_backfill_blocks_with_its_reason() {
    let mut failed = run(2, RunKind::Backfill, RunState::Failed, Some(50));
    failed.error = Some("disk full".into());
    let facts = Facts { runs: vec![failed], ..Facts::default() };
    assert_eq!(status(&facts, Phase::Backfill), Blocked("run #2 failed: disk full".into()));
    let facts =
        Facts { runs: vec![run(3, RunKind::Backfill, RunState::Cancelled, Some(50))], ..Facts::default() };
    assert_eq!(status(&facts, Phase::Backfill), Blocked("run #3 was cancelled; start a new one".into()));
}

#[test]
fn a_completed_backfill_stays_done_when_a_later_rerun_is_cancelled() {
    let mut facts = backfilled();
    facts.runs.push(run(2, RunKind::Backfill, RunState::Cancelled, Some(200)));
    assert_eq!(status(&facts, Phase::Backfill), Done);
}

#[test]
fn verification_counts_only_after_the_backfill_and_only_when_it_matches() {
    let mut facts = backfilled();
    facts.last_verification = Some((true, 50, 0));
    assert_eq!(status(&facts, Phase::Verify), Pending, "verified before the backfill finished");
    facts.last_verification = Some((false, 150, 3));
    assert_eq!(
        status(&facts, Phase::Verify),
        Blocked("the last verification found 3 ranges that differ".into())
    );
    facts.last_verification = Some((true, 150, 0));
    assert_eq!(status(&facts, Phase::Verify), Done);
}

#[test]
fn the_flag_is_done_only_after_verification_and_off_again_means_rolled_back() {
    let mut facts = backfilled();
    facts.flag_on = true;
    facts.flag_was_ever_on = true;
    assert!(matches!(status(&facts, Phase::FlagOn), Blocked(_)));
    facts.last_verification = Some((true, 150, 0));
    assert_eq!(status(&facts, Phase::FlagOn), Done);
    assert_eq!(status(&facts, Phase::SignOff), Active);
    facts.flag_on = false;
    assert_eq!(status(&facts, Phase::FlagOn), RolledBack);
    assert_eq!(status(&facts, Phase::SignOff), Pending);
}

#[test]
fn sign_off_needs_every_item_and_a_failed_item_blocks() {
    let mut facts = backfilled();
    facts.last_verification = Some((true, 150, 0));
    facts.flag_on = true;
    facts.flag_was_ever_on = true;
    facts.checklist_total = 3;
    facts.checklist_signed = 2;
    assert_eq!(status(&facts, Phase::SignOff), Active);
    facts.checklist_failed = 1;
    assert_eq!(status(&facts, Phase::SignOff), Blocked("1 checklist items failed".into()));
    facts.checklist_failed = 0;
    facts.checklist_signed = 3;
    let phases = derive(&facts);
    assert!(phases.iter().all(|(_, s)| *s == Done), "{phases:?}");
    assert_eq!(current(&phases), Phase::Done);
}

#[test]
fn a_data_rollback_after_the_backfill_rolls_back_backfill_and_verify() {
    let mut facts = backfilled();
    facts.last_verification = Some((true, 150, 0));
    facts.runs.push(run(2, RunKind::Rollback, RunState::Completed, Some(300)));
    assert_eq!(status(&facts, Phase::Backfill), RolledBack);
    assert_eq!(status(&facts, Phase::Verify), RolledBack);
    assert_eq!(status(&facts, Phase::Done), Pending);
    // a new backfill after the rollback starts the phase again
    facts.runs.push(run(3, RunKind::Backfill, RunState::Running, None));
    assert_eq!(status(&facts, Phase::Backfill), Active, "a new backfill after the rollback");
    facts.runs[2] = run(3, RunKind::Backfill, RunState::Completed, Some(400));
    assert_eq!(status(&facts, Phase::Backfill), Done);
    assert_eq!(status(&facts, Phase::Verify), Pending, "the old verification predates the new backfill");
}

#[test]
fn a_rollback_that_did_not_complete_still_undoes_the_backfill_and_closes_the_flag_gate() {
    for (state, reason) in [
        (RunState::Running, "rollback run #2 is running"),
        (RunState::Paused, "rollback run #2 is paused"),
        (RunState::Failed, "rollback run #2 failed part-way: finish it, or backfill again"),
        (RunState::Cancelled, "rollback run #2 was cancelled part-way: finish it, or backfill again"),
    ] {
        let mut facts = backfilled();
        facts.last_verification = Some((true, 150, 0));
        assert_eq!(flag_gate(Environment::Dev, &derive(&facts)), Ok(()));
        facts.runs.push(run(2, RunKind::Rollback, state, state.is_final().then_some(300)));
        assert_eq!(status(&facts, Phase::Backfill), Blocked(reason.into()), "a {state} rollback");
        assert_eq!(status(&facts, Phase::Verify), Pending, "a {state} rollback");
        assert_eq!(
            flag_gate(Environment::Dev, &derive(&facts)),
            Err(format!("dev must be backfilled and verified first ({reason})"))
        );
    }
}

#[test]
fn the_flag_gate_is_closed_while_a_backfill_runs() {
    let mut facts = backfilled();
    facts.last_verification = Some((true, 150, 0));
    facts.runs.push(run(2, RunKind::Backfill, RunState::Running, None));
    assert_eq!(flag_gate(Environment::Dev, &derive(&facts)), Err("a backfill is running in dev".into()));
}

#[test]
fn gates_list_both_live_backfills_then_each_flag_with_the_engines_reasons() {
    let verified: Vec<(Phase, PhaseStatus)> =
        Phase::ALL.iter().map(|&p| (p, if p <= Phase::Verify { Done } else { Pending })).collect();
    let nothing: Vec<(Phase, PhaseStatus)> = Phase::ALL.iter().map(|&p| (p, Pending)).collect();
    let envs = [
        (Environment::Dev, &verified[..]),
        (Environment::Staging, &nothing[..]),
        (Environment::Prod, &nothing[..]),
    ];
    let gates = gates(&envs);
    let listed: Vec<_> = gates.iter().map(|g| (g.kind, g.environment)).collect();
    assert_eq!(
        listed,
        [
            ("backfill", Environment::Staging),
            ("backfill", Environment::Prod),
            ("flag", Environment::Dev),
            ("flag", Environment::Staging),
            ("flag", Environment::Prod)
        ]
    );
    assert_eq!(gates[0].verdict, backfill_gate(Environment::Staging, &verified));
    assert!(gates[0].verdict.as_ref().unwrap_err().contains("running with ENABLE_STI on"));
    assert_eq!(gates[2].verdict, Ok(()), "dev is verified: its flag may go on");
    assert_eq!(gates[3].verdict, Err("staging must be backfilled and verified first".into()));
}

#[test]
fn only_closed_gates_in_front_of_what_an_environment_does_next_hold_it_back() {
    let verified: Vec<(Phase, PhaseStatus)> =
        Phase::ALL.iter().map(|&p| (p, if p <= Phase::Verify { Done } else { Pending })).collect();
    let backfilled: Vec<(Phase, PhaseStatus)> =
        Phase::ALL.iter().map(|&p| (p, if p <= Phase::Backfill { Done } else { Pending })).collect();
    let nothing: Vec<(Phase, PhaseStatus)> = Phase::ALL.iter().map(|&p| (p, Pending)).collect();
    let envs = [
        (Environment::Dev, &verified[..]),
        (Environment::Staging, &backfilled[..]),
        (Environment::Prod, &nothing[..]),
    ];
    let held: Vec<_> = holding_back(&envs).iter().map(|g| (g.kind, g.environment)).collect();
    // dev's flag gate is open, staging is backfilled (its backfill gate is behind it) and waits
    // for its verification before the flag, prod waits for staging; prod's flag is far off
    assert_eq!(held, [("backfill", Environment::Prod), ("flag", Environment::Staging)]);
}

#[test]
fn a_flag_turned_off_reads_as_turned_off_with_a_reason_not_as_a_data_rollback() {
    assert_eq!(RolledBack.label(Phase::FlagOn), "turned off");
    assert_eq!(RolledBack.label(Phase::Backfill), "rolled back");
    assert!(RolledBack.reason(Phase::FlagOn).unwrap().contains("off now"));
    assert_eq!(Blocked("why".into()).reason(Phase::Verify).as_deref(), Some("why"));
    assert_eq!(Done.reason(Phase::Verify), None);
}

#[test]
fn prod_held_back_by_a_staging_flag_turned_off_says_so_not_the_checklist() {
    let staging: Vec<(Phase, PhaseStatus)> = Phase::ALL
        .iter()
        .map(|&p| {
            (
                p,
                match p {
                    Phase::FlagOn => RolledBack,
                    Phase::SignOff | Phase::Done => Pending,
                    _ => Done,
                },
            )
        })
        .collect();
    let verdict = backfill_gate(Environment::Prod, &staging).unwrap_err();
    assert_eq!(verdict, "staging must be running with ENABLE_STI on first (it is turned off)");
}
