//! What to do next in one environment, in one line, with the one action that does it: derived
//! from its phases, its backfill gate and the health of its active run, so the overview and the
//! environment page say the same thing and offer the same button.

use super::environment::Environment;
use super::health::Health;
use super::live::RunView;
use super::phases::{Phase, PhaseStatus};

/// The action a next step asks for: the button the page makes primary. `Pause` and
/// `EmergencyStop` are never a next step; the waiting box asks for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    DryRun,
    StartBackfill,
    Resume,
    TakeOver,
    Verify,
    Reconcile,
    FlagOn,
    SignChecklist,
    Pause,
    EmergencyStop,
}

impl Action {
    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            Action::DryRun => "Dry-run",
            Action::StartBackfill => "Start backfill…",
            Action::Resume => "Resume",
            Action::TakeOver => "Take over…",
            Action::Verify => "Verify",
            Action::Reconcile => "Reconcile…",
            Action::FlagOn => "Turn on…",
            Action::SignChecklist => "Sign the checklist",
            Action::Pause => "Pause",
            Action::EmergencyStop => "Emergency stop…",
        }
    }

    /// Where on the environment page the action is (an element id).
    pub fn anchor(self) -> &'static str {
        match self {
            Action::FlagOn => "flag-heading",
            Action::SignChecklist => "checklist-heading",
            Action::Verify => "verify-heading",
            _ => "controls-heading",
        }
    }
}

/// How the line reads: something to do, something to wait for, something in the way, or nothing
/// left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    Next,
    Wait,
    Blocked,
    Done,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Next => "next",
            StepKind::Wait => "wait",
            StepKind::Blocked => "blocked",
            StepKind::Done => "done",
        }
    }
}

/// One environment's next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextStep {
    pub kind: StepKind,
    /// `Next: verify dev`, `Blocked: 2 checklist items failed — Contract tests, Stakeholder sign-off`.
    pub sentence: String,
    pub action: Option<Action>,
}

/// What the next step is read from.
#[derive(Clone, Copy, Debug)]
pub struct Situation<'a> {
    pub env: Environment,
    pub phases: &'a [(Phase, PhaseStatus)],
    /// The environment's newest run, and its health now.
    pub run: Option<(&'a RunView, &'a Health)>,
    /// Why a live backfill may not start here, if it may not.
    pub gate_closed: Option<&'a str>,
    /// The titles of the checklist items signed `fail` (when known).
    pub failed_items: &'a [String],
    /// Checklist items not signed yet, of all items (when known).
    pub open_items: Option<(usize, usize)>,
    /// The clock the run's health was told at (epoch ms).
    pub now_ms: i64,
}

fn step(kind: StepKind, sentence: String, action: Option<Action>) -> NextStep {
    NextStep { kind, sentence, action }
}

/// The next step of `situation`.
pub fn next_step(situation: &Situation<'_>) -> NextStep {
    use StepKind::{Blocked, Done, Next, Wait};
    let env = situation.env;
    if let Some((run, health)) = situation.run.filter(|(run, _)| run.is_active()) {
        let what = format!("{} run #{}", run.kind.as_str(), run.id);
        return match health {
            Health::Paused => step(Next, format!("Next: resume {what} in {env}"), Some(Action::Resume)),
            // another runner may take the run once its lease has run out, not before
            Health::RunnerLost { lease_ends_ms: Some(ends), .. } if *ends > situation.now_ms => step(
                Wait,
                format!(
                    "Wait: {what}'s runner is gone; it can be taken over when its lease runs out in {} s",
                    (ends - situation.now_ms + 999) / 1000
                ),
                None,
            ),
            Health::RunnerLost { .. } => step(
                Next,
                format!("Next: take over {what} in {env}: its runner is gone"),
                Some(Action::TakeOver),
            ),
            Health::Waiting(hold) | Health::Throttled(hold) => {
                step(Wait, format!("Wait: {what} is {} — {}", health.label(), hold.reason), None)
            }
            _ => step(Wait, format!("Wait: {what} is {}", health.label()), None),
        };
    }
    let status = |phase: Phase| {
        situation.phases.iter().find(|(p, _)| *p == phase).map_or(PhaseStatus::Pending, |(_, s)| s.clone())
    };
    if situation.phases.is_empty() {
        return step(Blocked, format!("Unknown: the phases of {env} cannot be read"), None);
    }
    if status(Phase::DryRun) == PhaseStatus::Pending {
        return step(Next, format!("Next: dry-run {env}"), Some(Action::DryRun));
    }
    match status(Phase::Backfill) {
        PhaseStatus::Done => {}
        backfill => {
            if let Some(gate) = situation.gate_closed {
                return step(Blocked, format!("Blocked: {gate}"), None);
            }
            let sentence = match backfill {
                PhaseStatus::Blocked(why) => format!("Next: backfill {env} again ({why})"),
                PhaseStatus::RolledBack => {
                    format!("Next: backfill {env} again once the rollback's cause is fixed")
                }
                _ => format!("Next: start the live backfill in {env}"),
            };
            return step(Next, sentence, Some(Action::StartBackfill));
        }
    }
    match status(Phase::Verify) {
        PhaseStatus::Done => {}
        PhaseStatus::Blocked(why) => {
            return step(
                Next,
                format!("Next: reconcile {env} and verify again ({why})"),
                Some(Action::Reconcile),
            );
        }
        _ => return step(Next, format!("Next: verify {env}"), Some(Action::Verify)),
    }
    match status(Phase::FlagOn) {
        PhaseStatus::Done => {}
        PhaseStatus::RolledBack => {
            return step(
                Next,
                format!("Next: turn ENABLE_STI on in {env} again once the reason it went off is dealt with"),
                Some(Action::FlagOn),
            );
        }
        _ => return step(Next, format!("Next: turn ENABLE_STI on in {env}"), Some(Action::FlagOn)),
    }
    match status(Phase::SignOff) {
        PhaseStatus::Done => step(Done, format!("Done: {env} is rolled out and signed off"), None),
        PhaseStatus::Blocked(why) if situation.failed_items.is_empty() => {
            step(Blocked, format!("Blocked: {why}"), Some(Action::SignChecklist))
        }
        PhaseStatus::Blocked(_) => step(
            Blocked,
            format!(
                "Blocked: {} failed — {}",
                match situation.failed_items.len() {
                    1 => "1 checklist item".to_owned(),
                    n => format!("{n} checklist items"),
                },
                situation.failed_items.join(", ")
            ),
            Some(Action::SignChecklist),
        ),
        _ => step(
            Next,
            match situation.open_items {
                Some((open, total)) => format!("Next: sign {env}'s checklist ({open} of {total} open)"),
                None => format!("Next: sign {env}'s checklist"),
            },
            Some(Action::SignChecklist),
        ),
    }
}

#[cfg(test)]
mod tests;

/// The next step of an environment as its page sees it: its phases, gate, newest run (its
/// health at the time the view was read) and checklist.
pub fn of_live(view: &super::live::LiveView) -> NextStep {
    use super::checklist::SignState;
    let health = view.run.as_ref().map(|run| Health::of(run, view.read_at));
    let failed: Vec<String> = view
        .checklist
        .iter()
        .filter(|e| e.state() == SignState::Fail)
        .map(|e| e.item.title.clone())
        .collect();
    let open = view.checklist.iter().filter(|e| !e.state().is_signed()).count();
    next_step(&Situation {
        env: view.environment,
        phases: &view.phases,
        run: view.run.as_ref().zip(health.as_ref()),
        gate_closed: view.gate_closed.as_deref(),
        failed_items: &failed,
        open_items: (!view.checklist.is_empty()).then_some((open, view.checklist.len())),
        now_ms: view.read_at,
    })
}

/// Each environment's next step as the overview sees it (no checklist titles there), in the
/// overview's order: the backfill gate comes from the phases of the environment before it.
pub fn of_overview(overview: &super::overview::Overview) -> Vec<NextStep> {
    let phases_of = |env: Environment| {
        overview.environments.iter().find(|e| e.environment == env).map_or(&[][..], |e| &e.phases[..])
    };
    overview
        .environments
        .iter()
        .map(|status| {
            let env = status.environment;
            let gate = super::phases::previous(env)
                .and_then(|before| super::phases::backfill_gate(env, phases_of(before)).err());
            let health = status.last_run.as_ref().map(|run| Health::of(run, overview.read_at_ms));
            next_step(&Situation {
                env,
                phases: &status.phases,
                run: status.last_run.as_ref().zip(health.as_ref()),
                gate_closed: gate.as_deref(),
                failed_items: &[],
                open_items: None,
                now_ms: overview.read_at_ms,
            })
        })
        .collect()
}
