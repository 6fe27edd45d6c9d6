#!/usr/bin/env bash
# Runs every test: formatting, clippy for the server and the browser builds, unit and integration
# tests against SQLite and a throwaway PostgreSQL, Playwright end-to-end tests in Chromium against
# a release build, schemathesis contract tests of the projects API in both modes, and promtool's
# check and unit tests of the alert rules in deploy/prometheus. First, the installer test
# (seconds). Installs what is missing; stops the PostgreSQL it started, always.
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
  STEP=$title # the ERR trap of tools.sh names it when a command fails
  say "$title"
  must "$@"
  say "$title: ok ($((SECONDS - t)) s)"
  STEP=
}

# The suite must pass while the console from scripts/run.sh serves on its default port, so this
# run holds 127.0.0.1:3000 itself (unless something already does): a test that uses it fails.
hold_default_port() {
  python3 -c '
import socket, sys, time
s = socket.socket()
try:
    s.bind(("127.0.0.1", 3000))
    s.listen()
except OSError:
    sys.exit(0)  # already held, by a running console perhaps: just as good
print("holding 127.0.0.1:3000 for this run: no test may use it", file=sys.stderr, flush=True)
time.sleep(86400)
' &
  port_holder=$!
}
port_holder=""
cleanup() {
  pg_stop_torture
  pg_stop
  if [ -n "$port_holder" ]; then kill "$port_holder" 2>/dev/null || true; fi
}

e2e() {
  pushd end2end >/dev/null
  # each spec starts its own console on target/e2e-<spec> and a free port (tests/helpers.ts)
  npx playwright test
  popd >/dev/null
}

step "installer test (every install step against stubs)" bash scripts/installer-test.sh

ensure_build_tools
ensure_chromium
ensure_postgres
ensure_e2e_packages
ensure_schemathesis
ensure_prometheus

step "alert rules (promtool check and test)" bash -c \
  'promtool check rules deploy/prometheus/alerts.yml && promtool test rules deploy/prometheus/alerts.test.yml'
step "formatting" cargo fmt --all -- --check
step "clippy, server build" cargo clippy --all-targets --features ssr -- -D warnings
step "clippy, browser build" cargo clippy --lib --features hydrate --target wasm32-unknown-unknown -- -D warnings

trap cleanup EXIT
hold_default_port
pg_start
pg_start_torture
step "unit and integration tests, SQLite and PostgreSQL (with the torture test)" cargo test --features ssr
pg_stop_torture

step "release build" build_release
# the roles spec's dev target is a database on the test cluster (STI_TEST_PG_URL)
step "end-to-end tests, Chromium" e2e
pg_stop
step "contract tests of the projects API (schemathesis), ENABLE_STI off and on" bash scripts/contract.sh
say "every test passed in $((SECONDS - started)) s"
