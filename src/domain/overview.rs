//! What the overview shows of one environment, and the small sums made from it.

use super::environment::Environment;
use serde::{Deserialize, Serialize};

/// Row counts read from an environment's target database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Rows in the legacy `projects` table.
    pub legacy: i64,
    /// Rows in `school_projects`.
    pub school: i64,
    /// Rows in `self_study_projects`.
    pub self_study: i64,
}

impl TableCounts {
    /// Legacy rows that have a subtype row, in either table.
    pub fn split(&self) -> i64 {
        self.school + self.self_study
    }

    /// Legacy rows without a subtype row yet (never negative).
    pub fn remaining(&self) -> i64 {
        (self.legacy - self.split()).max(0)
    }

    /// Share of legacy rows that have a subtype row, between 0 and 1.
    pub fn coverage(&self) -> f64 {
        if self.legacy <= 0 {
            return 0.0;
        }
        (self.split() as f64 / self.legacy as f64).clamp(0.0, 1.0)
    }
}

/// The state of a feature flag in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagState {
    pub enabled: bool,
    /// When it last changed (RFC 3339, UTC).
    pub updated_at: String,
    /// Who changed it last.
    pub updated_by: String,
}

/// One environment as the overview shows it. `counts` is an error message when its target
/// database could not be read, so one broken environment does not hide the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    pub environment: Environment,
    /// Which database it is, without credentials (`SQLite · data/dev.db`).
    pub database: String,
    pub counts: Result<TableCounts, String>,
    pub enable_sti: Option<FlagState>,
    /// The newest run, if any ran here.
    pub last_run: Option<super::live::RunView>,
    /// The rollout's phases here (empty when the control database could not say).
    pub phases: Vec<(super::phases::Phase, super::phases::PhaseStatus)>,
    /// How long its backfill will take: its running run's, or before one the rate measured
    /// here or in the environment before it, scaled by its rows left (none when nothing is left
    /// or nothing was measured yet).
    #[serde(default)]
    pub forecast: Option<super::forecast::Forecast>,
}

/// Everything the overview page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub environments: Vec<EnvironmentStatus>,
    /// The D-day calendar; `Err` when it could not be read.
    pub timeline: Result<super::timeline::Timeline, String>,
    /// When the figures were read (RFC 3339, UTC).
    pub read_at: String,
    /// The same, in ms since the epoch: the clock each run's health is told at.
    #[serde(default)]
    pub read_at_ms: i64,
    /// Emergency stops nobody acknowledged yet, in rollout order: the overview shows them first.
    #[serde(default)]
    pub incidents: Vec<super::incident::Incident>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::format::format_percent;

    #[test]
    fn coverage_is_the_split_share_of_legacy_rows() {
        let counts = TableCounts { legacy: 200, school: 100, self_study: 50 };
        assert_eq!(counts.split(), 150);
        assert_eq!(counts.remaining(), 50);
        assert!((counts.coverage() - 0.75).abs() < 1e-9);
        assert_eq!(format_percent(counts.coverage()), "75.0%");
    }

    #[test]
    fn an_empty_environment_has_zero_coverage_not_a_division_by_zero() {
        assert_eq!(TableCounts::default().coverage(), 0.0);
        assert_eq!(TableCounts::default().remaining(), 0);
    }
}
