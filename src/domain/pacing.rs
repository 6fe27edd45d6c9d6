//! Chunk sizing and progress arithmetic for runs.

use serde::{Deserialize, Serialize};

/// The smallest chunk an operator may ask for.
pub const MIN_CHUNK: i64 = 1;
/// The largest chunk an operator may ask for: bigger chunks hold locks too long.
pub const MAX_CHUNK: i64 = 100_000;
/// Adaptive sizing never goes below this, so a slow chunk cannot shrink the run to a crawl.
pub const MIN_ADAPTIVE_CHUNK: i64 = 100;
/// The longest pause between chunks an operator may ask for (ms).
pub const MAX_PAUSE_MS: i64 = 60_000;
/// The default chunk size (PRODUCT §3).
pub const DEFAULT_CHUNK: i64 = 1000;
/// The most workers one process starts for a run: more than a database's cores only queue.
pub const MAX_WORKERS: i64 = 32;
/// Slices per worker: enough that workers finishing at different times still share the end.
const SLICES_PER_WORKER: i64 = 8;

/// How fast a run goes; changeable while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pacing {
    /// Keys per chunk: a chunk ends at the n-th existing key after its start.
    pub chunk_size: i64,
    /// Pause between chunks, in milliseconds.
    pub pause_ms: i64,
    /// When set, the chunk size adapts towards chunks of this many milliseconds.
    pub target_chunk_ms: Option<i64>,
}

/// A pacing value out of range, in one sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacingError {
    #[error("chunk size must be between {MIN_CHUNK} and {MAX_CHUNK}, not {0}")]
    ChunkSize(i64),
    #[error("pause between chunks must be between 0 and {MAX_PAUSE_MS} ms, not {0}")]
    Pause(i64),
    #[error("target chunk time must be between 10 and 60000 ms, not {0}")]
    TargetChunk(i64),
    #[error("workers must be between 1 and {MAX_WORKERS}, not {0}")]
    Workers(i64),
}

/// Checks a number of workers per process.
pub fn check_workers(workers: i64) -> Result<i64, PacingError> {
    if (1..=MAX_WORKERS).contains(&workers) {
        Ok(workers)
    } else {
        Err(PacingError::Workers(workers))
    }
}

/// How many slices a range of `rows` is cut into for `workers` workers per process: eight per
/// worker (a second machine's workers find slices left too), but never a slice smaller than two
/// chunks, and at least one.
pub fn slice_count(workers: i64, rows: i64, chunk_size: i64) -> i64 {
    let by_workers = workers.max(1).saturating_mul(SLICES_PER_WORKER);
    let by_rows = rows.max(0) / chunk_size.max(1).saturating_mul(2);
    by_workers.min(by_rows).max(1)
}

impl Default for Pacing {
    fn default() -> Self {
        Self { chunk_size: DEFAULT_CHUNK, pause_ms: 0, target_chunk_ms: None }
    }
}

impl Pacing {
    /// Checks every value is in range.
    pub fn parse(chunk_size: i64, pause_ms: i64, target_chunk_ms: Option<i64>) -> Result<Self, PacingError> {
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
            return Err(PacingError::ChunkSize(chunk_size));
        }
        if !(0..=MAX_PAUSE_MS).contains(&pause_ms) {
            return Err(PacingError::Pause(pause_ms));
        }
        if let Some(target) = target_chunk_ms.filter(|t| !(10..=60_000).contains(t)) {
            return Err(PacingError::TargetChunk(target));
        }
        Ok(Self { chunk_size, pause_ms, target_chunk_ms })
    }

    /// The chunk size after a chunk that handled `rows` rows in `last_ms`, measured through its
    /// commit: unchanged without a target; otherwise halfway to the size that would take the
    /// target at the chunk's speed, by at most a factor of two. A chunk that found fewer than
    /// half its rows (the end of the table, a stretch of deleted or already copied rows) says
    /// little about a full chunk's time and changes nothing: sized by its time alone, such a
    /// fast chunk doubled the next one, which then overshot.
    pub fn next_chunk_size(&self, rows: i64, last_ms: u64) -> i64 {
        let Some(target) = self.target_chunk_ms else { return self.chunk_size };
        if rows <= 0 || rows * 2 < self.chunk_size {
            return self.chunk_size;
        }
        let current = self.chunk_size as f64;
        let wanted = target as f64 * rows as f64 / last_ms.max(1) as f64;
        let smoothed = ((current + wanted) / 2.0).clamp(current * 0.5, current * 2.0);
        (smoothed.round() as i64).clamp(MIN_ADAPTIVE_CHUNK, MAX_CHUNK)
    }
}

/// How far a run over the keys `(low, high]` is, with its checkpoint at `checkpoint`, and, when
/// known, the rows it has handled against the rows it expected.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub low: i64,
    pub high: i64,
    pub checkpoint: i64,
    /// `(done, expected)`: rows handled so far, rows in the range when the run began.
    pub rows: Option<(i64, i64)>,
}

impl Progress {
    /// Progress by the keys alone.
    pub fn of_keys(low: i64, high: i64, checkpoint: i64) -> Self {
        Self { low, high, checkpoint, rows: None }
    }

    /// Progress by rows when the run knows how many it expected (runs from before it did, and
    /// ranges without rows, go by the keys).
    pub fn of_run(low: i64, high: i64, checkpoint: i64, rows_done: i64, rows_expected: Option<i64>) -> Self {
        Self { low, high, checkpoint, rows: rows_expected.map(|expected| (rows_done, expected)) }
    }

    /// Share done, between 0 and 1: rows handled of rows expected when known (below 1 until the
    /// checkpoint reaches the end: rows written meanwhile may outnumber the estimate), else the
    /// share of the key span (1 for an empty span). With sparse keys only rows are honest: 1 000
    /// rows and one id of 10^12 are 0.0001% done by the keys after 999 of them.
    pub fn fraction(&self) -> f64 {
        let span = self.high - self.low;
        if span <= 0 || self.checkpoint >= self.high {
            return 1.0;
        }
        if let Some((done, expected)) = self.rows.filter(|(_, expected)| *expected > 0) {
            return (done as f64 / expected as f64).clamp(0.0, 0.999);
        }
        ((self.checkpoint - self.low) as f64 / span as f64).clamp(0.0, 1.0)
    }

    /// Seconds left, from the time spent so far on the part done; `None` before any progress.
    pub fn eta_seconds(&self, elapsed_seconds: f64) -> Option<f64> {
        let done = self.fraction();
        (done > 0.0).then(|| elapsed_seconds * (1.0 - done) / done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_cut_into_eight_slices_per_worker_but_none_smaller_than_two_chunks() {
        assert_eq!(slice_count(4, 1_000_000, 5000), 32);
        assert_eq!(slice_count(4, 40_000, 5000), 4);
        assert_eq!(slice_count(4, 100, 5000), 1);
        assert_eq!(slice_count(2, 0, 5000), 1);
        assert_eq!(slice_count(1, 1_000_000, 1), 8);
    }

    #[test]
    fn workers_are_between_one_and_the_limit() {
        assert_eq!(check_workers(1), Ok(1));
        assert_eq!(check_workers(MAX_WORKERS), Ok(MAX_WORKERS));
        assert_eq!(check_workers(0), Err(PacingError::Workers(0)));
        assert_eq!(check_workers(MAX_WORKERS + 1), Err(PacingError::Workers(MAX_WORKERS + 1)));
    }

    #[test]
    fn a_chunk_size_of_zero_or_an_absurd_one_is_refused() {
        assert_eq!(Pacing::parse(0, 0, None), Err(PacingError::ChunkSize(0)));
        assert_eq!(Pacing::parse(-5, 0, None), Err(PacingError::ChunkSize(-5)));
        assert_eq!(
            Pacing::parse(1_000_000, 0, None).unwrap_err().to_string(),
            "chunk size must be between 1 and 100000, not 1000000"
        );
        assert!(Pacing::parse(5000, 250, Some(200)).is_ok());
        assert_eq!(Pacing::parse(5000, -1, None), Err(PacingError::Pause(-1)));
        assert_eq!(Pacing::parse(5000, 0, Some(0)), Err(PacingError::TargetChunk(0)));
    }

    #[test]
    fn without_a_target_the_chunk_size_stays() {
        let pacing = Pacing::parse(5000, 0, None).unwrap();
        assert_eq!(pacing.next_chunk_size(5000, 10), 5000);
        assert_eq!(pacing.next_chunk_size(5000, 10_000), 5000);
    }

    #[test]
    fn adaptive_sizing_moves_halfway_towards_the_target_at_most_twofold() {
        let pacing = Pacing::parse(1000, 0, Some(100)).unwrap();
        assert_eq!(pacing.next_chunk_size(1000, 50), 1500, "halfway to the 2000 that would take 100 ms");
        assert_eq!(pacing.next_chunk_size(1000, 1), 2000, "capped at double");
        assert_eq!(pacing.next_chunk_size(1000, 200), 750);
        assert_eq!(pacing.next_chunk_size(1000, 100_000), 501, "halfway to a handful of rows");
        assert_eq!(
            Pacing::parse(1000, 0, Some(10)).unwrap().next_chunk_size(1000, 100_000),
            500,
            "capped at half"
        );
        let small = Pacing::parse(120, 0, Some(100)).unwrap();
        assert_eq!(small.next_chunk_size(120, 10_000), MIN_ADAPTIVE_CHUNK);
    }

    #[test]
    fn a_chunk_that_found_few_rows_does_not_grow_the_next() {
        let pacing = Pacing::parse(1000, 0, Some(100)).unwrap();
        assert_eq!(pacing.next_chunk_size(0, 1), 1000, "an empty range is fast and says nothing");
        assert_eq!(pacing.next_chunk_size(300, 5), 1000, "the table's last 300 rows");
        // chunks at the target's pace keep their size, a single fast one moves it only halfway
        assert_eq!(pacing.next_chunk_size(1000, 100), 1000);
        let sizes: Vec<i64> = [100_u64, 40, 100]
            .iter()
            .scan(pacing, |p, &ms| {
                p.chunk_size = p.next_chunk_size(p.chunk_size, ms);
                Some(p.chunk_size)
            })
            .collect();
        assert_eq!(sizes, vec![1000, 1750, 1750]);
    }

    #[test]
    fn progress_and_eta_come_from_the_checkpoint() {
        let p = Progress::of_keys(0, 1000, 250);
        assert!((p.fraction() - 0.25).abs() < 1e-9);
        assert_eq!(p.eta_seconds(10.0), Some(30.0));
        assert_eq!(Progress::of_keys(0, 1000, 0).eta_seconds(5.0), None);
        assert_eq!(Progress::of_keys(7, 7, 7).fraction(), 1.0);
    }

    #[test]
    fn with_sparse_keys_progress_counts_rows() {
        // 1 000 rows, ids 1..=1000, and one id of 10^12; 500 rows done
        let high = 1_000_000_000_000;
        let by_keys = Progress::of_keys(0, high, 500);
        assert!(by_keys.fraction() < 1e-6, "the key span says nothing is done");
        let by_rows = Progress::of_run(0, high, 500, 500, Some(1_001));
        assert!((by_rows.fraction() - 500.0 / 1_001.0).abs() < 1e-9);
        assert!((by_rows.eta_seconds(5.0).unwrap() - 5.01).abs() < 1e-9, "about as long again");
        // rows written meanwhile: never 100% before the end, always 100% at it
        assert_eq!(Progress::of_run(0, high, 900_000, 1_200, Some(1_001)).fraction(), 0.999);
        assert_eq!(Progress::of_run(0, high, high, 1_200, Some(1_001)).fraction(), 1.0);
        assert!(
            (Progress::of_run(0, 1000, 250, 0, None).fraction() - 0.25).abs() < 1e-9,
            "older runs by keys"
        );
    }
}
