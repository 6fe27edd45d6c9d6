//! When an environment will be backfilled: from a measured copy rate, the rows left and the
//! pacing — the copy takes rows ÷ rate, and every chunk adds its pause. Before a run the rate is
//! the one the environment before it measured (its newest completed backfill); while a run goes,
//! the run's own. Pure: the overview, the environment page and the dry-run say the same.

use super::environment::Environment;

use super::format::{format_count, format_duration};
use serde::{Deserialize, Serialize};

/// What a backfill measured: the rows its chunks read and the time inside their transactions
/// (pauses, waits and a dead runner's gaps left out), with the pacing it ran with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measured {
    pub environment: Environment,
    pub run_id: i64,
    pub rows: i64,
    pub copy_ms: i64,
    /// The pacing it ran with.
    pub chunk_size: i64,
    pub pause_ms: i64,
}

impl Measured {
    /// Rows per second inside the chunks' transactions; `None` for too little to tell.
    pub fn rows_per_second(&self) -> Option<f64> {
        (self.rows > 0 && self.copy_ms > 0).then(|| self.rows as f64 * 1000.0 / self.copy_ms as f64)
    }
}

/// How long copying `rows` takes at `rows_per_second` in chunks of `chunk_size` with `pause_ms`
/// between them: the copy itself, and one pause after every chunk but the last.
pub fn paced_seconds(rows: i64, rows_per_second: f64, chunk_size: i64, pause_ms: i64) -> f64 {
    if rows <= 0 || rows_per_second <= 0.0 {
        return 0.0;
    }
    let chunks = (rows + chunk_size.max(1) - 1) / chunk_size.max(1);
    rows as f64 / rows_per_second + (chunks - 1).max(0) as f64 * pause_ms.max(0) as f64 / 1000.0
}

/// An environment's forecast before or during its backfill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Seconds until the copy is done.
    pub seconds: f64,
    /// Where the rate comes from: `staging's backfill #4 (3,374 rows/s)`.
    pub basis: String,
}

impl Forecast {
    /// `about 23 min (from staging's backfill #4 at 3,374 rows/s, 5,000-row chunks, 60 ms pauses)`.
    pub fn describe(&self) -> String {
        format!("about {} ({})", format_duration(self.seconds), self.basis)
    }
}

/// A run's forecast from its start set against what it took, once it ended: `Forecast at its
/// start: about 4 min 10 s; it took 4 min 40 s, 12% longer.`; while it runs, the forecast alone.
pub fn against(forecast_seconds: f64, took_seconds: Option<f64>) -> String {
    let forecast = format!("Forecast at its start: about {}", format_duration(forecast_seconds));
    match took_seconds {
        Some(took) if forecast_seconds > 0.0 => {
            let off = (took - forecast_seconds) / forecast_seconds * 100.0;
            let how = match off.round() as i64 {
                0 => "as forecast".to_owned(),
                n if n > 0 => format!("{n}% longer"),
                n => format!("{}% shorter", -n),
            };
            format!("{forecast}; it took {}, {how}.", format_duration(took))
        }
        _ => format!("{forecast}."),
    }
}

/// The forecast of copying `rows` with `measured`'s rate and the pacing given.
pub fn forecast(rows: i64, measured: &Measured, chunk_size: i64, pause_ms: i64) -> Option<Forecast> {
    let rate = measured.rows_per_second()?;
    Some(Forecast {
        seconds: paced_seconds(rows, rate, chunk_size, pause_ms),
        basis: format!(
            "from {}'s backfill #{} at {} rows/s, {}-row chunks{}",
            measured.environment,
            measured.run_id,
            format_count(rate.round() as i64),
            format_count(chunk_size),
            if pause_ms > 0 { format!(", {} ms pauses", format_count(pause_ms)) } else { String::new() }
        ),
    })
}

/// The rate a forecast of `env` uses: its own newest measurement, or the nearest environment's
/// before it (`measured` in rollout order).
pub fn basis_for(env: Environment, measured: &[Measured]) -> Option<&Measured> {
    // environments order as the rollout goes: dev, staging, prod
    measured
        .iter()
        .filter(|m| m.environment <= env && m.rows_per_second().is_some())
        .max_by_key(|m| (m.environment, m.run_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_sets_its_forecast_against_what_it_took() {
        assert_eq!(against(250.0, None), "Forecast at its start: about 4 min 10 s.");
        assert_eq!(
            against(250.0, Some(280.0)),
            "Forecast at its start: about 4 min 10 s; it took 4 min 40 s, 12% longer."
        );
        assert_eq!(
            against(100.0, Some(80.0)),
            "Forecast at its start: about 1 min 40 s; it took 1 min 20 s, 20% shorter."
        );
        assert_eq!(
            against(100.0, Some(100.2)),
            "Forecast at its start: about 1 min 40 s; it took 1 min 40 s, as forecast."
        );
    }

    fn measured(environment: Environment, run_id: i64, rows: i64, copy_ms: i64) -> Measured {
        Measured { environment, run_id, rows, copy_ms, chunk_size: 5_000, pause_ms: 0 }
    }

    #[test]
    fn a_paced_run_takes_its_copy_time_and_a_pause_after_every_chunk_but_the_last() {
        // 100 000 rows at 10 000 rows/s in chunks of 5 000 with 60 ms pauses: 10 s + 19 × 0.06 s
        assert!((paced_seconds(100_000, 10_000.0, 5_000, 60) - 11.14).abs() < 1e-9);
        assert!((paced_seconds(100_000, 10_000.0, 5_000, 0) - 10.0).abs() < 1e-9);
        assert_eq!(paced_seconds(0, 10_000.0, 5_000, 60), 0.0);
        assert_eq!(paced_seconds(10, 0.0, 5_000, 60), 0.0, "no rate, no forecast to make");
    }

    #[test]
    fn the_pacing_entered_changes_the_forecast() {
        let dev = measured(Environment::Dev, 2, 10_000, 1_000);
        let quick = forecast(1_000_000, &dev, 5_000, 0).unwrap();
        let paced = forecast(1_000_000, &dev, 1_000, 1_000).unwrap();
        assert!((quick.seconds - 100.0).abs() < 1e-9);
        assert!((paced.seconds - (100.0 + 999.0)).abs() < 1e-9, "{paced:?}");
        assert_eq!(
            paced.describe(),
            format!(
                "about {} (from dev's backfill #2 at 10,000 rows/s, 1,000-row chunks, 1,000 ms pauses)",
                format_duration(1099.0)
            )
        );
    }

    #[test]
    fn an_environment_is_forecast_from_its_own_rate_or_the_nearest_before_it() {
        let all = [
            measured(Environment::Dev, 1, 10_000, 1_000),
            measured(Environment::Dev, 3, 10_000, 2_000),
            measured(Environment::Staging, 1, 100_000, 5_000),
        ];
        assert_eq!(
            basis_for(Environment::Prod, &all).map(|m| (m.environment, m.run_id)),
            Some((Environment::Staging, 1))
        );
        assert_eq!(basis_for(Environment::Dev, &all).map(|m| m.run_id), Some(3), "the newest of dev's own");
        assert_eq!(basis_for(Environment::Dev, &all[2..]), None, "nothing before dev measured");
        assert_eq!(measured(Environment::Dev, 1, 0, 0).rows_per_second(), None);
    }
}
