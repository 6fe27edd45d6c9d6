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

    /// In words for `phase`'s cell: a flag turned off after it was on is "turned off", not the
    /// "rolled back" of data deleted by a rollback.
    pub fn label(&self, phase: Phase) -> String {
        match (phase, self) {
            (Phase::FlagOn, PhaseStatus::RolledBack) => "turned off".to_owned(),
            _ => self.as_str().replace('_', " "),
        }
    }

    /// Why, for a cell that needs a reason (visible on a phone, where no hover title shows).
    pub fn reason(&self, phase: Phase) -> Option<String> {
        match (phase, self) {
            (_, PhaseStatus::Blocked(why)) => Some(why.clone()),
            (Phase::FlagOn, PhaseStatus::RolledBack) => Some("ENABLE_STI was on and is off now".to_owned()),
            (_, PhaseStatus::RolledBack) => Some("a rollback deleted what the backfill copied".to_owned()),
            _ => None,
        }
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
        Some(other) => Err(format!("{prev} must be {what} first (it is {})", other.label(phase))),
        None => Err(format!("{prev} must be {what} first")),
    };
    needs(Phase::Verify, "verified")?;
    // the flag before the checklist: a staging whose flag went off (an emergency stop) is held
    // back by that, not by a checklist that may be fully signed
    needs(Phase::FlagOn, "running with ENABLE_STI on")?;
    match env {
        Environment::Staging => Ok(()),
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

/// The closed gates that hold someone back now: an environment's live backfill while it is not
/// backfilled, its flag once it is. Open gates, and closed ones in front of a step nobody is at
/// yet, are noise on a status page.
pub fn holding_back(environments: &[(Environment, &[(Phase, PhaseStatus)])]) -> Vec<Gate> {
    let backfill_of = |env: Environment| {
        environments
            .iter()
            .find(|(e, _)| *e == env)
            .and_then(|(_, phases)| phases.iter().find(|(p, _)| *p == Phase::Backfill))
            .map(|(_, s)| s.clone())
    };
    gates(environments)
        .into_iter()
        .filter(|gate| gate.verdict.is_err())
        .filter(|gate| match (gate.kind, backfill_of(gate.environment)) {
            ("backfill", Some(PhaseStatus::Done | PhaseStatus::Active)) => false,
            ("backfill", _) => true,
            (_, backfill) => backfill == Some(PhaseStatus::Done),
        })
        .collect()
}

/// The first phase not done: where the environment is.
pub fn current(phases: &[(Phase, PhaseStatus)]) -> Phase {
    phases.iter().find(|(_, s)| !s.is_done()).map_or(Phase::Done, |(p, _)| *p)
}

#[cfg(test)]
mod tests;
