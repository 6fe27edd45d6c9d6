#!/usr/bin/env bash
# Runs the console on the embedded default: SQLite files and demo data in ./data (or --data-dir).
# Installs what is missing, builds a release, migrates, seeds on first start, serves.
# Arguments go to `sti-rollout serve`, e.g. scripts/run.sh --addr 0.0.0.0:3000
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

ensure_build_tools
build_release
say "starting the console"
exec target/release/sti-rollout serve "$@"
