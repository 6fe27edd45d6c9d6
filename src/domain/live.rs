//! What the environment page shows and the server pushes while a run goes: the run, its
//! progress, rate and ETA from the ledger (never a COUNT over the tables), chart points thinned
//! to a fixed number, and the last verification. Pure: computed on the server, read in the
//! browser.

use super::access::Role;
use super::environment::Environment;
use super::pacing::Progress;
use super::run::{Hold, RunKind, RunRequest, RunState};
use serde::{Deserialize, Serialize};

/// Chart points kept per run, whatever its number of chunks.
pub const MAX_CHART_POINTS: usize = 120;

/// Runs the page lists in its history.
pub const HISTORY: i64 = 30;

/// A run as the control database mirrors it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub id: i64,
    pub kind: RunKind,
    pub state: RunState,
    pub requested: Option<RunRequest>,
    pub started_by: String,
    pub chunk_size: i64,
    pub pause_ms: i64,
    pub low_id: i64,
    pub high_id: i64,
    pub checkpoint: i64,
    pub chunks: i64,
    pub rows_read: i64,
    pub school_created: i64,
    pub self_study_created: i64,
    pub school_skipped: i64,
    pub self_study_skipped: i64,
    pub errors: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub lease_expires_at: Option<i64>,
    /// How long the lease runs from each heartbeat (the runner renews it every third of it);
    /// `None` for runs from before it was kept.
    #[serde(default)]
    pub lease_ms: Option<i64>,
    /// Rows the run expected when it began; progress counts rows when it is known.
    pub rows_expected: Option<i64>,
    /// Workers per process (1: one loop).
    pub workers: i64,
    /// How long adding back and validating the foreign keys took, for a run with deferred
    /// validation that completed.
    pub fk_validation_ms: Option<i64>,
    /// Why the runner holds between chunks, while it does.
    pub hold: Option<Hold>,
}

/// How long after a hold's next try its runner still counts as alive: it rewrites the hold at
/// every try, the longest wait between tries is minutes, and a try may take a connect timeout.
pub const HOLD_GRACE_MS: i64 = 60_000;

impl RunView {
    pub fn progress(&self) -> Progress {
        Progress::of_run(self.low_id, self.high_id, self.checkpoint, self.rows_read, self.rows_expected)
    }

    pub fn is_active(&self) -> bool {
        !self.state.is_final()
    }

    /// An active run whose runner stopped renewing its lease: it can be taken over.
    pub fn runner_gone(&self, now_ms: i64) -> bool {
        // a runner waiting for its database cannot renew its lease there, but says in the
        // mirror that it is waiting
        self.is_active()
            && self.lease_expires_at.is_some_and(|at| at < now_ms)
            && !self.hold.as_ref().is_some_and(|h| h.is_fresh(now_ms, HOLD_GRACE_MS))
    }

    pub fn created(&self) -> i64 {
        self.school_created + self.self_study_created
    }

    pub fn skipped(&self) -> i64 {
        self.school_skipped + self.self_study_skipped
    }

    /// Wall time from start to end (or to its last update while it goes).
    pub fn duration_ms(&self) -> i64 {
        self.finished_at.unwrap_or(self.updated_at).saturating_sub(self.created_at).max(0)
    }
}

/// One committed chunk, as the mirrored ledger has it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkPoint {
    pub chunk_no: i64,
    pub from_id: i64,
    pub to_id: i64,
    pub rows_read: i64,
    pub school_created: i64,
    pub self_study_created: i64,
    pub errors: i64,
    pub duration_ms: i64,
    pub committed_at: i64,
}

/// One point of the run's charts: the state after a group of consecutive chunks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartPoint {
    /// Seconds since the run started.
    pub seconds: f64,
    /// Rows created so far, per study type.
    pub school: i64,
    pub self_study: i64,
    /// Rows read per second over the group.
    pub rows_per_second: f64,
    /// Mean chunk duration in the group, in milliseconds.
    pub chunk_ms: f64,
    /// Whether nothing ran for a while before this point (a pause, a wait, a dead runner): the
    /// charts break their lines there instead of drawing across the gap.
    #[serde(default)]
    pub gap_before: bool,
}

/// Idle time between two chunks that the charts show as a gap.
pub const CHART_GAP_MS: i64 = 10_000;

/// Something that happened to a run, marked on its charts at its time: `paused`, `pacing
/// 500 rows`, `taken over`, `flag on`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartMark {
    /// Seconds since the run started.
    pub seconds: f64,
    pub label: String,
}

/// The run's three charts as SVG, drawn on the server from [`LiveView::chart`] (the browser's
/// build carries no chart library); empty before the first chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawnCharts {
    /// Rows created so far, one line per study type.
    pub rows: String,
    /// Rows read per second.
    pub throughput: String,
    /// Mean chunk duration.
    pub duration: String,
}

/// Thins a run's chunks to at most `max` chart points: consecutive chunks are grouped evenly and
/// each group gives the cumulative rows at its end, its read rate over its wall time and its
/// mean chunk duration.
pub fn chart_points(started_at: i64, chunks: &[ChunkPoint], max: usize) -> Vec<ChartPoint> {
    if chunks.is_empty() || max == 0 {
        return Vec::new();
    }
    let group = chunks.len().div_ceil(max);
    let (mut school, mut self_study) = (0, 0);
    let mut previous_end = started_at;
    chunks
        .chunks(group)
        .map(|g| {
            school += g.iter().map(|c| c.school_created).sum::<i64>();
            self_study += g.iter().map(|c| c.self_study_created).sum::<i64>();
            let end = g.last().map_or(previous_end, |c| c.committed_at);
            // the group's first chunk began its transaction this long after the one before ended
            let idle = g.first().map_or(0, |c| c.committed_at - c.duration_ms - previous_end);
            let rows: i64 = g.iter().map(|c| c.rows_read).sum();
            let wall_ms = (end - previous_end).max(g.iter().map(|c| c.duration_ms).sum::<i64>()).max(1);
            previous_end = end;
            ChartPoint {
                seconds: (end - started_at).max(0) as f64 / 1000.0,
                school,
                self_study,
                rows_per_second: rows as f64 * 1000.0 / wall_ms as f64,
                chunk_ms: g.iter().map(|c| c.duration_ms).sum::<i64>() as f64 / g.len() as f64,
                gap_before: idle > CHART_GAP_MS,
            }
        })
        .collect()
}

/// The last verification of an environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationView {
    pub id: i64,
    pub ok: bool,
    pub ranges: i64,
    pub mismatched_ranges: i64,
    pub legacy_school: i64,
    pub legacy_self_study: i64,
    pub school_rows: i64,
    pub self_study_rows: i64,
    /// The first differing ids (the engine keeps at most a thousand).
    pub mismatched_ids: Vec<i64>,
    pub duration_ms: i64,
    pub created_at: i64,
}

impl VerificationView {
    /// The newest run that started or ended after this verification, if any: what the
    /// verification says of the tables is out of date (a rollback since deleted what it matched).
    pub fn outdated_by<'a>(&self, history: &'a [RunView]) -> Option<&'a RunView> {
        history.iter().find(|r| r.finished_at.unwrap_or(r.created_at) > self.created_at || r.is_active())
    }
}

/// Everything about an environment that changes while a run goes: what the server pushes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveView {
    pub environment: Environment,
    pub flag_on: bool,
    /// The active run, or the newest one.
    pub run: Option<RunView>,
    pub chart: Vec<ChartPoint>,
    /// [`Self::chart`] drawn, filled in by the server before the view leaves it.
    #[serde(default)]
    pub charts: DrawnCharts,
    /// Rows read per second: recently while the run copies, its average once it ended, none
    /// while it does not move ([`super::health::Pace`], at [`Self::read_at`]).
    pub rows_per_second: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub verification: Option<VerificationView>,
    /// Runs, newest first (the last few dozen).
    pub history: Vec<RunView>,
    /// The rollout's phases here, derived from what happened.
    pub phases: Vec<(super::phases::Phase, super::phases::PhaseStatus)>,
    /// Why a live backfill may not start here now (the gate), if it may not.
    pub gate_closed: Option<String>,
    /// The post-rollout checklist with each item's newest sign-off.
    pub checklist: Vec<super::checklist::ChecklistEntry>,
    /// Changes of `ENABLE_STI` here, newest first.
    pub flag_history: Vec<FlagChange>,
    /// The change capture's newest installation or removal here (`None`: never installed).
    pub capture: Option<CaptureChange>,
    /// What happened to [`Self::run`] while it ran (pauses, resumes, pacing, take-overs, flag
    /// changes, an emergency stop), marked on its charts.
    #[serde(default)]
    pub marks: Vec<ChartMark>,
    /// How long [`Self::run`] was forecast to take when it started (seconds), if it was.
    #[serde(default)]
    pub run_forecast_seconds: Option<f64>,
    /// The newest dry-run here, kept on the page with who ran it and when.
    #[serde(default)]
    pub last_dry_run: Option<LastDryRun>,
    /// Take-overs of the runs in [`Self::history`], oldest first: the history names every holder.
    #[serde(default)]
    pub take_overs: Vec<TakeOver>,
    /// The emergency stop here nobody acknowledged yet.
    #[serde(default)]
    pub incident: Option<super::incident::Incident>,
    /// The server's clock when this was read (epoch ms).
    pub read_at: i64,
}

/// A dry-run as the audit log keeps it: who, when, and its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastDryRun {
    pub actor: String,
    pub at: i64,
    pub report: super::reports::DryRunReport,
}

/// A run taken over by a new holder (a person, a CLI, a console replica), from the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeOver {
    pub run_id: i64,
    pub actor: String,
    pub at: i64,
    /// Where the run stood: the new holder goes on after it.
    pub checkpoint: i64,
}

/// Someone to call when an environment is in trouble; listed in escalation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    /// What they do in the rollout (`on-call engineer`, `database owner`, …).
    pub role: String,
    /// How to reach them: phone, e-mail, chat handle.
    pub reach: String,
}

/// The change capture installed (`on`) or removed, when and by whom, from the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureChange {
    pub on: bool,
    pub at: i64,
    pub actor: String,
    /// The lock timeout the installation held to, in ms.
    pub lock_timeout_ms: Option<i64>,
}

/// One change of the flag, from the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagChange {
    pub at: i64,
    pub actor: String,
    /// `flag.set` or `emergency_stop`.
    pub action: String,
    pub enabled: bool,
    pub reason: Option<String>,
}

/// The environment page's first load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentPage {
    pub live: LiveView,
    /// Emergency contacts from the configuration, in escalation order.
    pub contacts: Vec<Contact>,
    /// The signed-in user's role: the page offers what it allows.
    pub role: Role,
    /// The first page of rejected rows (the page reads later ones itself), or why the target
    /// database could not say.
    pub dead_letters: Result<DeadLetterPage, String>,
    /// The environment's webhooks and their newest deliveries, or why they cannot be read.
    pub notifications: Result<crate::domain::notifications::Notifications, String>,
    /// The subtype tables' foreign keys are off (deferred validation dropped them), in a
    /// sentence: why, what it means for the application and what puts them back. Read from the
    /// target when the page loads.
    #[serde(default)]
    pub keys_off: Option<String>,
    /// Workers per process a backfill here may have (1 on a SQLite target): the form checks it
    /// before the confirmation.
    #[serde(default = "one")]
    pub max_workers: i64,
}

fn one() -> i64 {
    1
}

/// What the page says of foreign keys a deferred run dropped and that are not back: `tables`
/// whose key to `projects` is off, `during_run` when the active run dropped them for its copy.
pub fn keys_off_notice(tables: &[String], during_run: Option<i64>) -> Option<String> {
    if tables.is_empty() {
        return None;
    }
    let tables = tables.join(" and ");
    Some(match during_run {
        Some(run) => format!(
            "Foreign keys off for run #{run}'s copy (deferred validation): {tables} to projects. They come \
             back when the run ends, and are validated when it completes."
        ),
        None => format!(
            "Foreign keys off: those of {tables} to projects were dropped for a deferred validation and \
             could not be put back yet. Until they are, the application's writes to these tables are not \
             checked against projects, and deleting a project leaves its subtype row. Any console replica \
             puts them back as soon as the tables' lock is free; a dead run holding them ends with a cancel \
             (Cancel run here, or sti-rollout control cancel)."
        ),
    })
}

/// One rejected legacy row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub project_id: i64,
    /// Why the last run that rejected it did.
    pub reason: String,
    /// Every run that rejected it, oldest first: a row rejected again by a later run is one
    /// row seen in several runs, not several rows.
    pub runs: Vec<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
}

impl DeadLetter {
    /// `#1, #3`.
    pub fn runs_text(&self) -> String {
        self.runs.iter().map(|r| format!("#{r}")).collect::<Vec<_>>().join(", ")
    }
}

/// A page of rejected rows, one per project id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterPage {
    pub rows: Vec<DeadLetter>,
    /// Project ids matching the filter, over every page.
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    /// Rejected project ids per reason, over every run and page: the filter's choices.
    pub reasons: Vec<(String, i64)>,
    /// Rejected project ids per run, newest run first: the other filter's choices.
    #[serde(default)]
    pub runs: Vec<(i64, i64)>,
}

/// What an emergency stop did in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub environment: Environment,
    /// The run asked to cancel, if one was active.
    pub cancelled_run: Option<i64>,
    /// Whether `ENABLE_STI` was on before.
    pub flag_was_on: bool,
}

impl Stopped {
    /// What a stop did, an environment a clause: `prod: ENABLE_STI off, run #7 cancelling`.
    pub fn describe(stopped: &[Stopped], separator: &str) -> String {
        stopped
            .iter()
            .map(|s| {
                let run = s.cancelled_run.map_or(String::new(), |r| format!(", run #{r} cancelling"));
                format!("{}: ENABLE_STI off{run}", s.environment)
            })
            .collect::<Vec<_>>()
            .join(separator)
    }
}

/// A running backfill #3 for tests: 10 000 of 100 000 rows copied, a 30 s lease.
#[cfg(test)]
pub(crate) fn test_run(state: RunState) -> RunView {
    RunView {
        id: 3,
        kind: RunKind::Backfill,
        state,
        requested: None,
        started_by: "user:ana".into(),
        chunk_size: 1000,
        pause_ms: 0,
        low_id: 0,
        high_id: 100_000,
        checkpoint: 10_000,
        chunks: 10,
        rows_read: 10_000,
        school_created: 6_000,
        self_study_created: 4_000,
        school_skipped: 0,
        self_study_skipped: 0,
        errors: 0,
        error: None,
        created_at: 0,
        updated_at: 0,
        finished_at: None,
        lease_expires_at: Some(30_000),
        lease_ms: Some(30_000),
        rows_expected: Some(100_000),
        workers: 1,
        fk_validation_ms: None,
        hold: None,
    }
}

#[cfg(test)]
mod tests;
