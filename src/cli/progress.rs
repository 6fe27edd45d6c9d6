//! Progress for long commands: indicatif's bar with rate and ETA on a terminal, plain lines
//! otherwise (a log, a pipe, CI).

use crate::domain::format::format_count;
use crate::domain::pacing::Progress;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Reports how far `(low, high]` a command is, at most a few times a second.
pub struct Reporter {
    what: String,
    low: i64,
    /// Rows the run expected when it began: the bar counts rows when it is known.
    expected: Option<i64>,
    started: Instant,
    /// Rows the run had read when this process first saw it: a run taken over brings its
    /// earlier rows along, which this process did not read.
    first_rows: Option<i64>,
    first_fraction: Option<f64>,
    last: Option<Instant>,
    /// The bar, on a terminal.
    bar: Option<indicatif::ProgressBar>,
    every: Duration,
}

/// The bar's length: the fraction done in ten-thousandths.
const STEPS: u64 = 10_000;

impl Reporter {
    pub fn new(what: impl Into<String>, low: i64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(STEPS);
            if let Ok(style) = indicatif::ProgressStyle::with_template("[{bar:24}] {msg}") {
                bar.set_style(style.progress_chars("#>."));
            }
            bar
        });
        Self {
            what: what.into(),
            low,
            expected: None,
            started: Instant::now(),
            first_rows: None,
            first_fraction: None,
            last: None,
            bar,
            every: if terminal { Duration::from_millis(100) } else { Duration::from_secs(2) },
        }
    }

    /// Counts progress in rows against `expected` (a run's `rows_expected`, known once the
    /// run has counted them).
    pub fn set_expected(&mut self, expected: Option<i64>) {
        self.expected = expected;
    }

    /// `rows` is what the rate counts (rows read so far), `checkpoint` how far the keys are.
    pub fn update(&mut self, checkpoint: i64, high: i64, rows: i64) {
        let done = checkpoint >= high;
        if !done && self.last.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        self.last = Some(Instant::now());
        let progress = Progress::of_run(self.low, high, checkpoint, rows, self.expected);
        let elapsed = self.started.elapsed().as_secs_f64();
        let first = *self.first_rows.get_or_insert(rows);
        let rate = if elapsed > 0.0 { (rows - first).max(0) as f64 / elapsed } else { 0.0 };
        // by what this process did: the rest at the pace since it began
        let done_here = progress.fraction() - *self.first_fraction.get_or_insert(progress.fraction());
        let eta = if done_here > 0.0 {
            format!("{:.0} s", elapsed * (1.0 - progress.fraction()) / done_here)
        } else {
            "–".to_owned()
        };
        let percent = progress.fraction() * 100.0;
        let line = format!(
            "{} {:5.1}%  id {} / {}  {} rows/s  ETA {}",
            self.what,
            percent,
            format_count(checkpoint),
            format_count(high),
            format_count(rate as i64),
            eta
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position((progress.fraction() * STEPS as f64).round() as u64);
                bar.set_message(line);
                if done {
                    bar.finish();
                }
            }
            None => {
                // a closed stderr must not end the run
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    /// Says the run holds — `waiting: connection refused since 14:02:11 UTC, next try in 4 s` —
    /// once per try (the runner calls at every one), on its own line.
    pub fn hold(&mut self, hold: &crate::domain::run::Hold) {
        let since = format!("{} UTC", crate::domain::format::clock_ms(hold.since_ms));
        let line = format!("{} {}", self.what, hold.describe(&since, crate::db::now_ms()));
        match &self.bar {
            // above the bar, which stays
            Some(bar) => bar.println(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
        // the next progress line comes at once when the run goes on
        self.last = None;
    }

    /// Ends a bar line that did not reach 100% (a cancelled or failed run).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.as_ref().filter(|b| !b.is_finished()) {
            bar.abandon();
        }
    }
}
