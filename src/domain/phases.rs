//! The rollout's phases per environment — dry-run → backfill → verify → flag on → monitor &
//! sign-off → done — derived from what really happened (runs, verifications, flag changes,
//! sign-offs). Nobody ticks a phase by hand: [`derive`] is the only way a phase changes.

use super::environment::Environment;
use super::run::{RunKind, RunState};
use serde::{Deserialize, Serialize};

/// The six phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    DryRun,
    Backfill,
    Verify,
    FlagOn,
    SignOff,
    Done,
}

impl Phase {
    pub const ALL: [Phase; 6] =
        [Phase::DryRun, Phase::Backfill, Phase::Verify, Phase::FlagOn, Phase::SignOff, Phase::Done];

    pub fn label(self) -> &'static str {
        match self {
            Phase::DryRun => "Dry-run",
            Phase::Backfill => "Backfill",
            Phase::Verify => "Verify",
            Phase::FlagOn => "Flag on",
            Phase::SignOff => "Monitor & sign-off",
            Phase::Done => "Done",
        }
    }
}

/// Where a phase stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum PhaseStatus {
    Pending,
    Active,
    Blocked(String),
    Done,
    RolledBack,
}

impl PhaseStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PhaseStatus::Pending => "pending",
            PhaseStatus::Active => "active",
            PhaseStatus::Blocked(_) => "blocked",
            PhaseStatus::Done => "done",
            PhaseStatus::RolledBack => "rolled_back",
        }
    }

    pub fn is_done(&self) -> bool {
        *self == PhaseStatus::Done
    }
}

/// A run, as far as phases care. Times are epoch milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFact {
    pub id: i64,
    pub kind: RunKind,
    pub state: RunState,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

/// What happened in one environment: the input of [`derive`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// When the newest dry-run ended.
    pub last_dry_run_at: Option<i64>,
    /// Every run, oldest first.
    pub runs: Vec<RunFact>,
    /// The newest verification: whether it matched, how many ranges differed, when.
    pub last_verification: Option<(bool, i64, i64)>,
    pub flag_on: bool,
    /// Whether the flag was ever turned on here (so "off" after it means rolled back).
    pub flag_was_ever_on: bool,
    /// Checklist items signed pass or waived, items failed, and items in all.
    pub checklist_signed: usize,
    pub checklist_failed: usize,
    pub checklist_total: usize,
}

/// Every phase's status, in order.
pub fn derive(facts: &Facts) -> Vec<(Phase, PhaseStatus)> {
    use PhaseStatus::*;
    let backfills = || facts.runs.iter().filter(|r| r.kind == RunKind::Backfill);
    let last_backfill = backfills().next_back();
    let completed_at =
        backfills().filter(|r| r.state == RunState::Completed).filter_map(|r| r.finished_at).max();
    // Any rollback newer than the last completed backfill undoes it, whether it completed or
    // not: a rollback stopped part-way has deleted some rows. The target numbers runs in order.
    let last_completed = backfills().filter(|r| r.state == RunState::Completed).map(|r| r.id).max();
    let rollbacks_since = || {
        facts
            .runs
            .iter()
            .filter(move |r| r.kind == RunKind::Rollback && last_completed.is_none_or(|done| r.id > done))
    };
    let undoing = rollbacks_since().find(|r| !r.state.is_final());
    let rolled_back = rollbacks_since().any(|r| r.state == RunState::Completed);
    let part_way = rollbacks_since().next_back();

    let dry_run = if facts.last_dry_run_at.is_some() || completed_at.is_some() { Done } else { Pending };

    let backfill = match (last_backfill, undoing, part_way) {
        (Some(run), _, _) if !run.state.is_final() => Active,
        (_, Some(rollback), _) => Blocked(format!("rollback run #{} is {}", rollback.id, rollback.state)),
        _ if rolled_back => RolledBack,
        (_, _, Some(rollback)) => {
            let how = if rollback.state == RunState::Cancelled { "was cancelled" } else { "failed" };
            Blocked(format!("rollback run #{} {how} part-way: finish it, or backfill again", rollback.id))
        }
        (None, _, _) => Pending,
        (Some(_), _, _) if completed_at.is_some() => Done,
        (Some(run), _, _) => Blocked(match &run.error {
            Some(error) => format!("run #{} {}: {error}", run.id, run.state),
            None => format!("run #{} was {}; start a new one", run.id, run.state),
        }),
    };

    let verify = match (&backfill, facts.last_verification, completed_at) {
        (RolledBack, _, _) => RolledBack,
        (Done, Some((true, at, _)), Some(done)) if at >= done => Done,
        (Done, Some((false, at, ranges)), Some(done)) if at >= done => {
            Blocked(format!("the last verification found {ranges} ranges that differ"))
        }
        _ => Pending,
    };

    let flag = match (facts.flag_on, facts.flag_was_ever_on) {
        (true, _) if verify.is_done() => Done,
        (true, _) => Blocked("ENABLE_STI is on but the backfill is not verified".into()),
        (false, true) => RolledBack,
        (false, false) => Pending,
    };

    let sign_off = if !flag.is_done() {
        Pending
    } else if facts.checklist_failed > 0 {
        Blocked(format!("{} checklist items failed", facts.checklist_failed))
    } else if facts.checklist_total > 0 && facts.checklist_signed >= facts.checklist_total {
        Done
    } else {
        Active
    };

    let all_done = [&dry_run, &backfill, &verify, &flag, &sign_off].iter().all(|s| s.is_done());
    let done = if all_done { Done } else { Pending };

    vec![
        (Phase::DryRun, dry_run),
        (Phase::Backfill, backfill),
        (Phase::Verify, verify),
        (Phase::FlagOn, flag),
        (Phase::SignOff, sign_off),
        (Phase::Done, done),
    ]
}

/// The environment whose rollout must come first, if any.
pub fn previous(env: Environment) -> Option<Environment> {
    match env {
        Environment::Dev => None,
        Environment::Staging => Some(Environment::Dev),
        Environment::Prod => Some(Environment::Staging),
    }
}

/// Whether `env`'s live backfill may start, given the phases of the environment before it: the
/// gate is open (`Ok`) or closed with the reason, in words. Staging needs dev verified with its
/// flag on; prod needs staging verified and staging's checklist signed.
pub fn backfill_gate(env: Environment, before: &[(Phase, PhaseStatus)]) -> Result<(), String> {
    let Some(prev) = previous(env) else { return Ok(()) };
    let status = |phase: Phase| before.iter().find(|(p, _)| *p == phase).map(|(_, s)| s.clone());
    let needs = |phase: Phase, what: &str| match status(phase) {
        Some(PhaseStatus::Done) => Ok(()),
        Some(PhaseStatus::Blocked(reason)) => Err(format!("{prev} must be {what} first ({reason})")),
        Some(other) => {
            Err(format!("{prev} must be {what} first (it is {})", other.as_str().replace('_', " ")))
        }
        None => Err(format!("{prev} must be {what} first")),
    };
    needs(Phase::Verify, "verified")?;
    match env {
        Environment::Staging => needs(Phase::FlagOn, "running with ENABLE_STI on"),
        _ => needs(Phase::SignOff, "signed off on its checklist"),
    }
}

/// Whether `ENABLE_STI` may be turned on in `env`, given its phases: it must be verified, which
/// it is not while any run is active there or after a rollback newer than its last backfill.
pub fn flag_gate(env: Environment, phases: &[(Phase, PhaseStatus)]) -> Result<(), String> {
    let status = |phase: Phase| phases.iter().find(|(p, _)| *p == phase).map(|(_, s)| s);
    if status(Phase::Verify).is_some_and(PhaseStatus::is_done) {
        return Ok(());
    }
    match status(Phase::Backfill) {
        Some(PhaseStatus::Active) => Err(format!("a backfill is running in {env}")),
        Some(PhaseStatus::Blocked(reason)) => {
            Err(format!("{env} must be backfilled and verified first ({reason})"))
        }
        _ => Err(format!("{env} must be backfilled and verified first")),
    }
}

/// One gate the engine enforces, as the phases stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    pub environment: Environment,
    /// `backfill` (the live backfill) or `flag` (turning `ENABLE_STI` on).
    pub kind: &'static str,
    /// Open, or closed with the reason.
    pub verdict: Result<(), String>,
}

/// Every gate of the rollout from each environment's phases (dev, staging, prod): the live
/// backfills of the environments that have a predecessor, then the flag in each environment.
pub fn gates(environments: &[(Environment, &[(Phase, PhaseStatus)])]) -> Vec<Gate> {
    let phases_of =
        |env: Environment| environments.iter().find(|(e, _)| *e == env).map_or(&[][..], |(_, p)| *p);
    let backfills = environments.iter().filter_map(|&(env, _)| {
        let before = previous(env)?;
        Some(Gate { environment: env, kind: "backfill", verdict: backfill_gate(env, phases_of(before)) })
    });
    let flags = environments.iter().map(|&(env, phases)| Gate {
        environment: env,
        kind: "flag",
        verdict: flag_gate(env, phases),
    });
    backfills.chain(flags).collect()
}

/// The first phase not done: where the environment is.
pub fn current(phases: &[(Phase, PhaseStatus)]) -> Phase {
    phases.iter().find(|(_, s)| !s.is_done()).map_or(Phase::Done, |(p, _)| *p)
}

#[cfg(test)]
mod tests {
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
        assert_eq!(closed, "dev must be running with ENABLE_STI on first (it is rolled back)");
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
        let facts = Facts {
            runs: vec![run(3, RunKind::Backfill, RunState::Cancelled, Some(50))],
            ..Facts::default()
        };
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
}
