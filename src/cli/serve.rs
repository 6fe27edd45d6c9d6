//! `serve` and `seed`: the console itself, and demo rows for one environment.

use super::CliError;
use crate::db::control;
use crate::db::seed::{SeedError, SeedMode, MAX_ROWS};
use crate::domain::environment::Environment;
use crate::domain::format::format_count;
use crate::server::config::Config;
use crate::server::startup::{open_control_and_target, seed_with_progress, Application};
use std::net::SocketAddr;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STI_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
}

impl ServeArgs {
    /// What a bare `sti-rollout` serves on: `STI_ADDR`, else the `LEPTOS_SITE_ADDR` cargo-leptos
    /// sets, else 127.0.0.1:3000.
    pub fn from_environment() -> Self {
        let addr = ["STI_ADDR", "LEPTOS_SITE_ADDR"]
            .iter()
            .find_map(|var| std::env::var(var).ok()?.parse().ok())
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3000)));
        Self { addr }
    }
}

pub async fn serve(config: &Config, args: ServeArgs) -> Result<(), CliError> {
    let app = Application::build(config, args.addr).await?;
    println!("STI Rollout Console is serving at http://{}:{}/", display_host(args.addr), app.port());
    app.run_until_stopped().await.map_err(CliError::Serve)
}

fn display_host(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// The environment: dev, staging or prod.
    #[arg(long)]
    env: Environment,
    /// How many legacy rows to generate.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_ROWS))]
    rows: i64,
    /// Add rows after the existing ones instead of refusing a table that has rows.
    #[arg(long)]
    append: bool,
}

pub async fn seed(config: &Config, SeedArgs { env, rows, append }: SeedArgs) -> Result<(), CliError> {
    let (control, target) = open_control_and_target(config, env).await?;
    let mode = if append { SeedMode::Append } else { SeedMode::Fresh };
    let seed_error = |source| CliError::Seed { env, source };
    let record = seed_with_progress(&target, env, rows, mode).await.map_err(seed_error)?;
    control::record_seed(&control, env, record).await.map_err(|e| seed_error(SeedError::Db(e)))?;
    println!(
        "{env}: {} legacy rows generated (ids {}–{}) in {:.1} s",
        format_count(record.rows),
        record.first_id,
        record.last_id,
        record.duration_ms as f64 / 1000.0
    );
    Ok(())
}
