//! Runs started from the console go on in this process, in the background: the request that
//! started one returns at once and the page follows it through the pushed updates. The lease
//! keeps a second runner (another request, or the CLI) out; if this process dies, the lease
//! expires and an operator can take the run over.

use super::backfill;
use super::runs::Held;
use crate::db::Database;
use crate::domain::environment::Environment;

/// Drives `held` to its end on a background task.
pub fn spawn(control: Database, target: Database, env: Environment, held: Held) {
    tokio::spawn(async move {
        let (run_id, kind) = (held.run.id, held.run.kind);
        let mut quiet = |_: &super::runs::RunRecord, _: Option<&backfill::ChunkOutcome>| {};
        let result = backfill::run(&target, Some(&control), env, held, &mut quiet).await;
        match result {
            Ok(run) => {
                tracing::info!(environment = %env, run_id, kind = kind.as_str(), state = %run.state, "run ended")
            }
            Err(error) => {
                tracing::error!(environment = %env, run_id, kind = kind.as_str(), %error, "run stopped")
            }
        }
    });
}
