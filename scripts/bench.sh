#!/usr/bin/env bash
# Benchmarks the backfill engine on SQLite and on a throwaway PostgreSQL with durable settings
# (fsync and synchronous_commit on), printing ratios against a single insert … select measured in
# the same run. Arguments go to `sti-rollout bench` (default: 1M rows, 3 rounds, chunk 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
source scripts/pg.sh

ensure_postgres
ensure_build_tools
# the same build as every script: a plain `cargo build` used to leave a binary whose pages load
# a WebAssembly file that is not there (.cargo/config.toml now names it for every build)
build_release

# the reference machine's PostgreSQL settings (shared/reference/backfill-baseline.md), durable
PG_SETTINGS="-c shared_buffers=1GB -c max_wal_size=4GB -c checkpoint_timeout=30min"
trap pg_stop EXIT
pg_start

# parallel workers and deferred validation are PostgreSQL's: SQLite refuses them
if [[ " $* " != *" --workers"* && " $* " != *" --deferred "* ]]; then
  say "SQLite"
  target/release/sti-rollout bench "$@"
fi
say "PostgreSQL"
target/release/sti-rollout bench --postgres "$STI_TEST_PG_URL" "$@"
