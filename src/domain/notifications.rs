//! Notifications: the events a webhook can be sent, and the delivery log the environment page
//! shows. The server's `webhooks` module finds the events and delivers them.

use serde::{Deserialize, Serialize};

/// Something a team wants to hear of without watching the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Event {
    RunCompleted,
    RunFailed,
    RunWaiting,
    RunThrottled,
    VerificationFailed,
    GateOverridden,
    FlagChanged,
    EmergencyStop,
    ChecklistFailed,
}

impl Event {
    pub const ALL: [Event; 9] = [
        Event::RunCompleted,
        Event::RunFailed,
        Event::RunWaiting,
        Event::RunThrottled,
        Event::VerificationFailed,
        Event::GateOverridden,
        Event::FlagChanged,
        Event::EmergencyStop,
        Event::ChecklistFailed,
    ];

    /// The name the config file, the body and the `X-STI-Event` header use.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::RunCompleted => "run.completed",
            Event::RunFailed => "run.failed",
            Event::RunWaiting => "run.waiting",
            Event::RunThrottled => "run.throttled",
            Event::VerificationFailed => "verification.failed",
            Event::GateOverridden => "gate.overridden",
            Event::FlagChanged => "flag.changed",
            Event::EmergencyStop => "emergency_stop",
            Event::ChecklistFailed => "checklist.failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    /// Not sent yet, or sent and to be retried.
    Pending,
    Delivered,
    /// Given up: the attempts ran out, or the receiver refused it for good.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One delivery of one event to one webhook, as the log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub hook: String,
    pub event: String,
    pub summary: String,
    pub state: DeliveryState,
    pub attempts: i64,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt did not deliver.
    pub last_error: Option<String>,
    pub created_at: i64,
    /// When a pending delivery is tried next.
    pub next_attempt_at: i64,
    /// When it was delivered or given up.
    pub finished_at: Option<i64>,
}

/// A configured webhook, as the page names it (never its address or secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookInfo {
    pub name: String,
    /// `json` or `slack`.
    pub format: String,
    pub events: Vec<String>,
    pub signed: bool,
}

/// The environment page's notifications card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    pub hooks: Vec<HookInfo>,
    /// The newest deliveries first.
    pub deliveries: Vec<Delivery>,
}
