//! An emergency stop as an incident: who stopped what, when and why, what the stop did and did
//! not do, and the way back — shown on the overview and the environment's page until someone
//! acknowledges it. Derived from the audit log (`emergency_stop`, then
//! `emergency_stop.acknowledge`), so it needs no state of its own.

use super::environment::Environment;
use super::format::format_epoch_ms;
use serde::{Deserialize, Serialize};

/// The audit log's action that acknowledges an environment's emergency stops.
pub const ACKNOWLEDGE: &str = "emergency_stop.acknowledge";

/// An emergency stop nobody has acknowledged yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The stop's audit entry.
    pub id: i64,
    pub environment: Environment,
    pub at: i64,
    pub actor: String,
    pub reason: String,
    /// The run the stop asked to cancel, if one was active.
    pub cancelled_run: Option<i64>,
    /// Whether `ENABLE_STI` was on before the stop.
    pub flag_was_on: bool,
    /// Whether the change capture is installed in the environment (the stop leaves it).
    #[serde(default)]
    pub capture_installed: bool,
}

impl Incident {
    /// `Emergency stop in staging by user:ana at 2026-12-08 14:02 UTC: "replica lag alarms"`.
    pub fn headline(&self) -> String {
        format!(
            "Emergency stop in {} by {} at {}: \u{201c}{}\u{201d}",
            self.environment,
            self.actor,
            format_epoch_ms(self.at),
            self.reason
        )
    }

    /// What the stop did.
    pub fn did(&self) -> String {
        let run = match self.cancelled_run {
            Some(id) => format!("It cancelled run #{id} at its next chunk boundary"),
            None => "No run was active".to_owned(),
        };
        let flag = if self.flag_was_on {
            "turned ENABLE_STI off: applications read the legacy columns again"
        } else {
            "ENABLE_STI was already off"
        };
        format!("{run}; {flag}.")
    }

    /// What it did not do: the data and the capture stay.
    pub fn did_not(&self) -> &'static str {
        match self.capture_installed {
            true => {
                "It deleted nothing: the rows copied so far stay, and the change capture stays \
                 installed, so application writes to projects keep the subtype rows in step."
            }
            false => "It deleted nothing (no change capture is installed here).",
        }
    }

    /// The way back, either way.
    pub fn way_back(&self) -> &'static str {
        "To go on: start the backfill again (it continues after its checkpoint), verify, then turn \
         ENABLE_STI on through its gate. To undo the migration instead: roll back the data, which \
         also removes the capture."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(run: Option<i64>, was_on: bool) -> Incident {
        Incident {
            id: 9,
            environment: Environment::Staging,
            at: 1_796_738_520_000,
            actor: "user:ana".into(),
            reason: "replica lag alarms".into(),
            cancelled_run: run,
            flag_was_on: was_on,
            capture_installed: true,
        }
    }

    #[test]
    fn an_incident_says_what_the_stop_did_and_did_not_do() {
        let i = stop(Some(3), true);
        assert!(i.headline().starts_with("Emergency stop in staging by user:ana at "), "{}", i.headline());
        assert!(i.headline().ends_with(": \u{201c}replica lag alarms\u{201d}"));
        assert_eq!(
            i.did(),
            "It cancelled run #3 at its next chunk boundary; turned ENABLE_STI off: applications read the legacy columns again."
        );
        assert_eq!(stop(None, false).did(), "No run was active; ENABLE_STI was already off.");
        assert!(i.did_not().contains("change capture stays installed"));
        let bare = Incident { capture_installed: false, ..i };
        assert_eq!(bare.did_not(), "It deleted nothing (no change capture is installed here).");
    }
}
