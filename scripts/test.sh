#!/usr/bin/env bash
# Runs every test: formatting, clippy for the server and the browser builds, unit and integration
# tests against SQLite and a throwaway PostgreSQL, Playwright end-to-end tests in Chromium against
# a release build, and schemathesis contract tests of the projects API in both modes. Installs what is missing; stops the PostgreSQL it started, always.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
source scripts/pg.sh

# incremental compilation data grows to tens of GB here and buys nothing in a one-shot run
export CARGO_INCREMENTAL=0

started=$SECONDS
step() {
  local title=$1 t=$SECONDS
  shift
  say "$title"
  "$@"
  say "$title: ok ($((SECONDS - t)) s)"
}

e2e() {
  local port
  port=$(pg_free_port)
  rm -rf target/e2e-data
  (cd end2end && E2E_PORT=$port E2E_ROLLOUT_PORT=$(pg_free_port) npx playwright test)
}

ensure_build_tools
ensure_chromium
ensure_postgres
ensure_e2e_packages
ensure_schemathesis

step "formatting" cargo fmt --all -- --check
step "clippy, server build" cargo clippy --all-targets --features ssr -- -D warnings
step "clippy, browser build" cargo clippy --lib --features hydrate --target wasm32-unknown-unknown -- -D warnings

trap pg_stop EXIT
pg_start
step "unit and integration tests, SQLite and PostgreSQL" cargo test --features ssr
pg_stop

step "release build" build_release
step "end-to-end tests, Chromium" e2e
step "contract tests of the projects API (schemathesis), ENABLE_STI off and on" bash scripts/contract.sh
say "every test passed in $((SECONDS - started)) s"
