//! One module per page; each holds one public page component and its small private parts.

pub mod account;
pub mod audit;
pub mod environment;
pub mod keys;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod runbook;
pub mod signoffs;
