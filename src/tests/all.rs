//! The integration test binary: every integration test, against real SQLite and PostgreSQL.
//!
//! PostgreSQL tests need `STI_TEST_PG_URL` (a superuser URL); `scripts/test.sh` starts a throwaway
//! cluster and sets it. Each test gets fresh databases: a temporary folder, or new PostgreSQL
//! databases.

#![expect(clippy::unwrap_used, reason = "a test fails loudly at the first error")]

mod access;
mod api_keys;
mod assets;
mod capture;
mod cli_errors;
mod console;
mod deferred_keys;
mod demo_data;
mod dialects;
mod engine_defects;
mod engine_runs;
mod faults;
mod health;
mod identification;
mod incidents;
mod layers;
mod overview;
mod production;
mod projects;
mod prometheus;
mod reconcile;
mod replicas;
mod security;
mod seed_command;
mod signing;
mod support;
mod target_databases;
mod torture;
mod users;
mod waiting;
mod webhooks;
mod workers;
