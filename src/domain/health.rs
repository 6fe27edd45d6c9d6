//! A run's health: what it is doing now, derived once from the mirrored run and the clock, and
//! said the same way on the overview, the environment page, `/metrics` and the CLI. The run's
//! state is what it was last told to be; its health also knows whether its runner is still
//! there, whether it holds between chunks, and whether its rate and ETA mean anything.

use super::live::{ChunkPoint, RunView, HOLD_GRACE_MS};
use super::run::{Hold, HoldKind, RunState};

/// Slack on top of one heartbeat period before a runner counts as lost: a chunk in flight does
/// not renew the lease, and the mirror lags the target by a moment.
pub const HEARTBEAT_SLACK_MS: i64 = 5_000;

/// What a run is doing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Queued,
    /// Copying: its runner is there and nothing holds it.
    Running,
    Paused,
    /// Waiting out a fault of its database (it goes on by itself).
    Waiting(Hold),
    /// Held by a health signal over its threshold.
    Throttled(Hold),
    /// Its runner missed its heartbeat: `last_heard_ms` is its last sign of life, `lease_ends_ms`
    /// when another runner may take the run over (`None`: unknown).
    RunnerLost {
        last_heard_ms: i64,
        lease_ends_ms: Option<i64>,
    },
    Completed,
    Failed,
    Cancelled,
}

impl Health {
    /// Every health's name, in the order `/metrics` lists them.
    pub const NAMES: [&'static str; 9] = [
        "queued",
        "running",
        "paused",
        "waiting",
        "throttled",
        "runner_lost",
        "completed",
        "failed",
        "cancelled",
    ];

    /// The health of `run` at `now_ms` (the server's clock: leases and holds are its times).
    pub fn of(run: &RunView, now_ms: i64) -> Health {
        match run.state {
            RunState::Completed => return Health::Completed,
            RunState::Failed => return Health::Failed,
            RunState::Cancelled => return Health::Cancelled,
            RunState::Queued | RunState::Running | RunState::Paused => {}
        }
        let last_heard_ms = last_heard(run);
        if let Some(hold) = run.hold.as_ref().filter(|_| run.state == RunState::Running) {
            // a runner waiting for its database cannot renew its lease there: it says it is
            // alive by rewriting its hold at every try
            if hold.is_fresh(now_ms, HOLD_GRACE_MS) {
                return match hold.kind {
                    HoldKind::Waiting => Health::Waiting(hold.clone()),
                    HoldKind::Throttled => Health::Throttled(hold.clone()),
                };
            }
            return Health::RunnerLost {
                last_heard_ms: last_heard_ms.max(hold.since_ms),
                lease_ends_ms: run.lease_expires_at,
            };
        }
        if heartbeat_missed(run, now_ms) {
            return Health::RunnerLost { last_heard_ms, lease_ends_ms: run.lease_expires_at };
        }
        match run.state {
            RunState::Queued => Health::Queued,
            RunState::Paused => Health::Paused,
            _ => Health::Running,
        }
    }

    /// Its name: a CSS class, a metric label, the CLI's column.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Queued => "queued",
            Health::Running => "running",
            Health::Paused => "paused",
            Health::Waiting(_) => "waiting",
            Health::Throttled(_) => "throttled",
            Health::RunnerLost { .. } => "runner_lost",
            Health::Completed => "completed",
            Health::Failed => "failed",
            Health::Cancelled => "cancelled",
        }
    }

    /// Its name in words, for a badge: `runner lost`.
    pub fn label(&self) -> &'static str {
        match self {
            Health::RunnerLost { .. } => "runner lost",
            other => other.as_str(),
        }
    }

    /// Whether rows are being copied now, so a recent rate and an ETA mean something.
    pub fn is_moving(&self) -> bool {
        *self == Health::Running
    }

    /// One line: the label and, where there is one, why and since when — the overview's card, the
    /// CLI and the page's badge title say this. `clock` writes an epoch-ms time for the reader.
    pub fn describe(&self, now_ms: i64, clock: impl Fn(i64) -> String) -> String {
        match self {
            Health::Waiting(hold) | Health::Throttled(hold) => hold.describe(&clock(hold.since_ms), now_ms),
            Health::RunnerLost { last_heard_ms, lease_ends_ms } => {
                let ago = seconds(now_ms - last_heard_ms);
                match lease_ends_ms {
                    Some(ends) if *ends > now_ms => format!(
                        "runner lost: last heard from {ago} ago; its lease runs out in {}",
                        seconds(ends - now_ms)
                    ),
                    _ => format!("runner lost: last heard from {ago} ago; its lease has run out"),
                }
            }
            other => other.label().to_owned(),
        }
    }
}

/// `42 s`, `3 min 5 s`, `2 h 4 min`.
fn seconds(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// The runner's last sign of life the mirror knows of: its last heartbeat (the lease's last
/// renewal) or its last write to the run, whichever is newer.
pub fn last_heard(run: &RunView) -> i64 {
    let beat = match (run.lease_expires_at, run.lease_ms) {
        (Some(expires), Some(lease)) => expires - lease,
        _ => i64::MIN,
    };
    beat.max(run.updated_at)
}

/// Whether the runner of an active run missed its heartbeat: it renews its lease every third of
/// it, so one period and some slack without a renewal is a runner gone — seen well before the
/// lease runs out (20 s before, on the default 30 s lease). A run from before the lease's length
/// was kept counts as lost once its lease has run out.
fn heartbeat_missed(run: &RunView, now_ms: i64) -> bool {
    match (run.lease_expires_at, run.lease_ms) {
        (Some(expires), Some(lease)) => {
            let silent_for = now_ms - last_heard(run);
            silent_for > (lease / 3 + HEARTBEAT_SLACK_MS).min(lease) || expires < now_ms
        }
        (Some(expires), None) => expires < now_ms,
        (None, _) => false,
    }
}

/// The rate a run's card shows and its ETA.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Rows per second: the recent rate while the run copies, its average over its running
    /// time once it ended; `None` while it does not move (paused, holding, runner lost).
    pub rows_per_second: Option<f64>,
    /// Seconds left at the recent rate, only while the run copies.
    pub eta_seconds: Option<f64>,
}

/// Chunks the recent rate looks back over.
pub const RATE_WINDOW: usize = 20;

/// Slack allowed between two chunks before the time between them counts as not running (a
/// pause, a wait, a dead runner): a chunk's own duration and the configured pause, plus this.
const BETWEEN_CHUNKS_MS: i64 = 1_000;

impl Pace {
    /// The pace of `run` as `health` says it is now, from its ledger `chunks`.
    pub fn of(run: &RunView, health: &Health, chunks: &[ChunkPoint]) -> Pace {
        match health {
            Health::Running => recent(run, chunks),
            Health::Completed | Health::Failed | Health::Cancelled => {
                let running_ms = running_ms(run, chunks);
                Pace {
                    rows_per_second: (running_ms > 0 && !chunks.is_empty()).then(|| {
                        chunks.iter().map(|c| c.rows_read).sum::<i64>() as f64 * 1000.0 / running_ms as f64
                    }),
                    eta_seconds: None,
                }
            }
            _ => Pace { rows_per_second: None, eta_seconds: None },
        }
    }
}

/// Rows per second over the last chunks and the seconds left at that pace: the rows left of
/// those the run expected, or, for a run that did not record them, the keys left at the keys'
/// pace; nothing before the first chunk.
fn recent(run: &RunView, chunks: &[ChunkPoint]) -> Pace {
    let recent = &chunks[chunks.len().saturating_sub(RATE_WINDOW)..];
    let (Some(first), Some(last)) = (recent.first(), recent.last()) else {
        return Pace { rows_per_second: None, eta_seconds: None };
    };
    // copying time, not wall time: a wait or a pause between two of them is not the pace, and
    // the ETA right after a wait would otherwise jump (22 min → 2 h 21 min → 22 min)
    let wall_ms = running_ms(run, recent).max(1);
    let rows: i64 = recent.iter().map(|c| c.rows_read).sum();
    let keys = last.to_id.saturating_sub(first.from_id);
    let rows_per_second = rows as f64 * 1000.0 / wall_ms as f64;
    let keys_per_second = keys as f64 * 1000.0 / wall_ms as f64;
    let eta_seconds = match run.rows_expected {
        Some(expected) if rows_per_second > 0.0 => {
            Some((expected - run.rows_read).max(0) as f64 / rows_per_second)
        }
        None if keys_per_second > 0.0 => {
            Some(run.high_id.saturating_sub(run.checkpoint).max(0) as f64 / keys_per_second)
        }
        _ => None,
    };
    Pace { rows_per_second: Some(rows_per_second), eta_seconds }
}

/// How long a run was copying: each chunk's time since the one before, but no more than its own
/// duration, the pause between chunks and a little slack — a pause, a wait or a runner's gap
/// between two chunks is not running time.
pub fn running_ms(run: &RunView, chunks: &[ChunkPoint]) -> i64 {
    let mut previous: Option<i64> = None;
    chunks
        .iter()
        .map(|c| {
            let most = c.duration_ms.max(0) + run.pause_ms.max(0) + BETWEEN_CHUNKS_MS;
            let since = previous.map_or(c.duration_ms.max(0), |p| (c.committed_at - p).max(0));
            previous = Some(c.committed_at);
            since.min(most)
        })
        .sum()
}

#[cfg(test)]
mod tests;
