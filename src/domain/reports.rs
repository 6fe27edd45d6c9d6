//! What a dry-run and a rollback dry-run report: computed by the engine on the server, shown
//! by the CLI and the console.

use super::environment::Environment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts per study type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerType {
    pub school: i64,
    pub self_study: i64,
}

/// What a live run would do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DryRunReport {
    pub environment: Environment,
    pub low_id: i64,
    pub high_id: i64,
    pub chunks: i64,
    pub rows_read: i64,
    pub would_create: PerType,
    pub would_skip: PerType,
    pub would_reject: i64,
    /// Rejection reason → rows.
    pub reasons: BTreeMap<String, i64>,
    pub duration_ms: i64,
    /// The live run's likely duration, with the pacing the dry-run was given.
    pub estimated_live_seconds: f64,
    /// The copy rate the estimate used (rows per second), so another pacing can be forecast.
    #[serde(default)]
    pub rows_per_second: f64,
    /// Where the estimate's rate comes from: `history` (past runs here) or `baseline`.
    pub estimate_basis: String,
}

/// What a rollback would delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPlan {
    pub environment: Environment,
    pub school: i64,
    pub self_study: i64,
    /// Subtype rows the application wrote; a rollback keeps them.
    pub kept: i64,
}
