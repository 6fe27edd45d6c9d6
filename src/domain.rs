//! Pure rules of the rollout, compiled for the server and the browser alike.
//! Nothing here knows about leptos, axum or sqlx.

pub mod access;
pub mod audit;
pub mod blockers;
pub mod calendar;
pub mod checklist;
pub mod environment;
pub mod forecast;
pub mod format;
pub mod health;
pub mod incident;
pub mod live;
pub mod next_step;
pub mod notifications;
pub mod overview;
pub mod pacing;
pub mod phases;
pub mod policy;
#[cfg(feature = "ssr")]
pub mod projects;
pub mod reports;
pub mod run;
pub mod span;
pub mod study_type;
pub mod timeline;
