//! The `sti-rollout` binary: parse the command line, start logging, hand over to the CLI.

// the pages' view types are instantiated here, in the binary, and nest deeper than 128
#![recursion_limit = "256"]

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = sti_rollout::cli::Cli::parse();
    sti_rollout::cli::init_tracing();
    sti_rollout::cli::run(cli).await
}
