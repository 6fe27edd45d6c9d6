//! Chunk sizing and progress arithmetic for runs.

use serde::{Deserialize, Serialize};

/// The largest chunk an operator may ask for: bigger chunks hold locks too long.
pub const MAX_CHUNK: i64 = 100_000;
/// Adaptive sizing never goes below this, so a slow chunk cannot shrink the run to a crawl.
pub const MIN_ADAPTIVE_CHUNK: i64 = 100;
/// The longest pause between chunks an operator may ask for (ms).
pub const MAX_PAUSE_MS: i64 = 60_000;
/// The default chunk size (PRODUCT §3).
pub const DEFAULT_CHUNK: i64 = 1000;

/// How fast a run goes; changeable while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pacing {
    /// Ids per chunk (a span of keys, not a row count).
    pub chunk_size: i64,
    /// Pause between chunks, in milliseconds.
    pub pause_ms: i64,
    /// When set, the chunk size adapts towards chunks of this many milliseconds.
    pub target_chunk_ms: Option<i64>,
}

/// A pacing value out of range, in one sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacingError {
    #[error("chunk size must be between 1 and {MAX_CHUNK}, not {0}")]
    ChunkSize(i64),
    #[error("pause between chunks must be between 0 and {MAX_PAUSE_MS} ms, not {0}")]
    Pause(i64),
    #[error("target chunk time must be between 10 and 60000 ms, not {0}")]
    TargetChunk(i64),
}

impl Default for Pacing {
    fn default() -> Self {
        Self { chunk_size: DEFAULT_CHUNK, pause_ms: 0, target_chunk_ms: None }
    }
}

impl Pacing {
    /// Checks every value is in range.
    pub fn parse(chunk_size: i64, pause_ms: i64, target_chunk_ms: Option<i64>) -> Result<Self, PacingError> {
        if !(1..=MAX_CHUNK).contains(&chunk_size) {
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

    /// The chunk size after a chunk that took `last_ms`: unchanged without a target, otherwise
    /// scaled towards the target, by at most a factor of two per chunk.
    pub fn next_chunk_size(&self, last_ms: u64) -> i64 {
        let Some(target) = self.target_chunk_ms else { return self.chunk_size };
        let factor = (target as f64 / (last_ms.max(1)) as f64).clamp(0.5, 2.0);
        ((self.chunk_size as f64 * factor).round() as i64).clamp(MIN_ADAPTIVE_CHUNK, MAX_CHUNK)
    }
}

/// How far a run over the keys `(low, high]` is, with its checkpoint at `checkpoint`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub low: i64,
    pub high: i64,
    pub checkpoint: i64,
}

impl Progress {
    /// Share of the key span done, between 0 and 1 (1 for an empty span).
    pub fn fraction(&self) -> f64 {
        let span = self.high - self.low;
        if span <= 0 {
            return 1.0;
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
        assert_eq!(pacing.next_chunk_size(10), 5000);
        assert_eq!(pacing.next_chunk_size(10_000), 5000);
    }

    #[test]
    fn adaptive_sizing_moves_towards_the_target_at_most_twofold() {
        let pacing = Pacing::parse(1000, 0, Some(100)).unwrap();
        assert_eq!(pacing.next_chunk_size(50), 2000);
        assert_eq!(pacing.next_chunk_size(1), 2000, "capped at double");
        assert_eq!(pacing.next_chunk_size(200), 500);
        assert_eq!(pacing.next_chunk_size(100_000), 500, "capped at half");
        let small = Pacing::parse(120, 0, Some(100)).unwrap();
        assert_eq!(small.next_chunk_size(10_000), MIN_ADAPTIVE_CHUNK);
    }

    #[test]
    fn progress_and_eta_come_from_the_checkpoint() {
        let p = Progress { low: 0, high: 1000, checkpoint: 250 };
        assert!((p.fraction() - 0.25).abs() < 1e-9);
        assert_eq!(p.eta_seconds(10.0), Some(30.0));
        assert_eq!(Progress { low: 0, high: 1000, checkpoint: 0 }.eta_seconds(5.0), None);
        assert_eq!(Progress { low: 7, high: 7, checkpoint: 7 }.fraction(), 1.0);
    }
}
