//! The life of a backfill or rollback run: its states and the transitions between them.
//!
//! `queued → running ⇄ paused → completed | cancelled | failed`. A run is *active* until it
//! reaches one of the three final states; only one run per environment may be active.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Copies legacy rows into the subtype tables.
    Backfill,
    /// Deletes the subtype rows that backfill runs created.
    Rollback,
    /// Re-copies the ids a verification found different (stored as a backfill with its ids).
    Reconcile,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backfill => "backfill",
            Self::Rollback => "rollback",
            Self::Reconcile => "reconcile",
        }
    }

    /// What the console calls a run of this kind.
    pub fn title(self) -> &'static str {
        match self {
            Self::Backfill => "Backfill",
            Self::Rollback => "Rollback",
            Self::Reconcile => "Reconcile",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "backfill" => Some(Self::Backfill),
            "rollback" => Some(Self::Rollback),
            "reconcile" => Some(Self::Reconcile),
            _ => None,
        }
    }
}

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Paused,
    Completed,
    Cancelled,
    Failed,
}

/// A transition the state machine does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} run cannot become {to}")]
pub struct InvalidTransition {
    pub from: RunState,
    pub to: RunState,
}

impl RunState {
    pub const ALL: [RunState; 6] = [
        RunState::Queued,
        RunState::Running,
        RunState::Paused,
        RunState::Completed,
        RunState::Cancelled,
        RunState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Completed, cancelled and failed runs never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }

    /// Whether the state machine allows going from `self` to `to`.
    pub fn can_become(self, to: RunState) -> bool {
        use RunState::*;
        matches!(
            (self, to),
            (Queued, Running | Cancelled | Failed)
                | (Running, Paused | Completed | Cancelled | Failed)
                | (Paused, Running | Cancelled | Failed)
        )
    }

    /// `to`, if the transition is allowed.
    pub fn transition(self, to: RunState) -> Result<RunState, InvalidTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator asks of an active run; the runner acts on it at the next chunk boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunRequest {
    Pause,
    Resume,
    Cancel,
}

impl RunRequest {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pause, Self::Resume, Self::Cancel].into_iter().find(|r| r.as_str() == s)
    }

    /// The state the request leads to from `state`, or why it cannot.
    pub fn target(self, state: RunState) -> Result<RunState, InvalidTransition> {
        let to = match self {
            Self::Pause => RunState::Paused,
            Self::Resume => RunState::Running,
            Self::Cancel => RunState::Cancelled,
        };
        state.transition(to)
    }
}

/// Where a new run of `kind` begins, given the newest run over a key range (kind, state,
/// checkpoint; a reconcile of some ids does not count): after that run's checkpoint when it is a
/// failed run of the same kind — what it committed stays committed — and otherwise from the
/// first id (`None`): after a completed or cancelled run, or when a run of the other kind went
/// over the range since and made the checkpoint meaningless. The engine and the start
/// confirmation both ask this.
pub fn continues_after(kind: RunKind, newest: Option<(RunKind, RunState, i64)>) -> Option<i64> {
    match newest {
        Some((newest_kind, RunState::Failed, checkpoint)) if newest_kind == kind => Some(checkpoint),
        _ => None,
    }
}

/// Why a running run is holding between chunks instead of copying: the database did not
/// answer (it is waited out, not fatal) or a health signal is over its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    Waiting,
    Throttled,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Throttled => "throttled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "waiting" => Some(Self::Waiting),
            "throttled" => Some(Self::Throttled),
            _ => None,
        }
    }
}

/// A run holding: what for, since when and when it tries again (ms since the epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub kind: HoldKind,
    /// `connection refused`, `replica lag 3.2 s > 1.0 s`, …
    pub reason: String,
    /// The reason's kind, for a metric label: `connection refused`, `replica lag`.
    pub label: String,
    pub since_ms: i64,
    pub next_try_ms: i64,
    /// Tries so far while waiting out a fault (the first failure is try 1); 0 for a throttle,
    /// which checks its signals and does not count.
    #[serde(default)]
    pub tries: i64,
    /// When the run fails with the fault if it still lasts (its retry policy's limit); `None` for
    /// a throttle, which holds as long as its signal is over.
    #[serde(default)]
    pub gives_up_at_ms: Option<i64>,
}

impl Hold {
    /// `waiting: connection refused since 14:02:11 (3 s), next try in 4 s`, as the page, the CLI and
    /// the logs say it; `since` is the time already formatted for the reader.
    pub fn describe(&self, since: &str, now_ms: i64) -> String {
        let next = (self.next_try_ms - now_ms).max(0);
        let next = (next + 999) / 1000;
        let held = (now_ms - self.since_ms).max(0) / 1000;
        let held = match held {
            0..60 => format!("{held} s"),
            _ => format!("{} min {} s", held / 60, held % 60),
        };
        // a try in progress (SQLite's busy timeout, a lock timeout) is past its "next try"
        let next = match next {
            0 => "trying again now".to_owned(),
            n => format!("next try in {n} s"),
        };
        format!("{}: {} since {since} ({held}), {next}", self.kind.as_str(), self.reason)
    }

    /// Whether the runner that wrote the hold still looks alive at `now_ms`: it rewrites the
    /// hold at every try, so a hold whose next try is long past is a runner gone.
    pub fn is_fresh(&self, now_ms: i64, grace_ms: i64) -> bool {
        now_ms <= self.next_try_ms.saturating_add(grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunState::*;

    #[test]
    fn a_run_goes_from_queued_through_running_to_an_end() {
        assert_eq!(Queued.transition(Running), Ok(Running));
        assert_eq!(Running.transition(Completed), Ok(Completed));
    }

    #[test]
    fn running_and_paused_alternate() {
        assert_eq!(Running.transition(Paused), Ok(Paused));
        assert_eq!(Paused.transition(Running), Ok(Running));
    }

    #[test]
    fn a_finished_run_never_changes_again() {
        for from in [Completed, Cancelled, Failed] {
            assert!(from.is_final());
            for to in RunState::ALL {
                assert_eq!(from.transition(to), Err(InvalidTransition { from, to }), "{from} → {to}");
            }
        }
    }

    #[test]
    fn a_paused_or_queued_run_cannot_complete_without_running() {
        assert!(!Paused.can_become(Completed));
        assert!(!Queued.can_become(Completed));
        assert!(!Queued.can_become(Paused));
    }

    #[test]
    fn every_active_state_can_be_cancelled_or_fail() {
        for from in [Queued, Running, Paused] {
            assert!(!from.is_final());
            assert!(from.can_become(Cancelled) && from.can_become(Failed), "{from}");
        }
    }

    #[test]
    fn requests_map_to_transitions_and_refuse_the_impossible() {
        assert_eq!(RunRequest::Pause.target(Running), Ok(Paused));
        assert_eq!(RunRequest::Resume.target(Paused), Ok(Running));
        assert_eq!(RunRequest::Cancel.target(Paused), Ok(Cancelled));
        assert_eq!(
            RunRequest::Pause.target(Completed).unwrap_err().to_string(),
            "a completed run cannot become paused"
        );
    }

    #[test]
    fn a_new_run_continues_only_after_a_failed_run_of_its_own_kind() {
        assert_eq!(continues_after(RunKind::Backfill, Some((RunKind::Backfill, Failed, 1_200))), Some(1_200));
        assert_eq!(continues_after(RunKind::Backfill, Some((RunKind::Rollback, Failed, 1_200))), None);
        assert_eq!(continues_after(RunKind::Backfill, Some((RunKind::Backfill, Cancelled, 1_200))), None);
        assert_eq!(continues_after(RunKind::Rollback, None), None);
    }

    #[test]
    fn states_and_kinds_round_trip_through_their_names() {
        for state in RunState::ALL {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
        }
        for kind in [RunKind::Backfill, RunKind::Rollback, RunKind::Reconcile] {
            assert_eq!(RunKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RunRequest::parse("cancel"), Some(RunRequest::Cancel));
        for kind in [HoldKind::Waiting, HoldKind::Throttled] {
            assert_eq!(HoldKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn a_hold_says_why_since_when_and_when_it_tries_again() {
        let hold = Hold {
            kind: HoldKind::Waiting,
            reason: "connection refused".into(),
            label: "connection refused".into(),
            since_ms: 1_000,
            next_try_ms: 5_500,
            tries: 3,
            gives_up_at_ms: Some(1_801_000),
        };
        assert_eq!(
            hold.describe("14:02:11", 2_000),
            "waiting: connection refused since 14:02:11 (1 s), next try in 4 s"
        );
        assert_eq!(
            hold.describe("14:02:11", 125_000),
            "waiting: connection refused since 14:02:11 (2 min 4 s), trying again now"
        );
        assert!(hold.is_fresh(20_000, 30_000) && !hold.is_fresh(40_000, 30_000));
    }
}
