//! (ssr) The web server: configuration, startup and the router, and the plain HTTP endpoints.

pub mod auth;
pub mod client_address;
pub mod config;
pub mod events;
pub mod headers;
pub mod health;
pub mod http_metrics;
pub mod metrics;
pub mod ofrep;
pub mod password;
pub mod projects;
pub mod render;
pub mod routes;
pub mod startup;
pub mod state;
