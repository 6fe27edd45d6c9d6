#!/usr/bin/env bash
# Contract tests of the projects API: schemathesis (every check) against a running release
# server, with a write key, first with ENABLE_STI off (legacy mode), then — after a real backfill,
# verification and flag switch — with it on (STI mode). Fails on any failure in either mode.
# Needs the release build (scripts/test.sh makes it first). CONTRACT_EXAMPLES sets how many cases
# schemathesis generates per operation (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
source scripts/pg.sh

ensure_schemathesis
repo=$(pwd)
dir=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$dir"' EXIT

cat >"$dir/sti.toml" <<TOML
[demo_rows]
dev = 2000
staging = 10
prod = 10
TOML
start_scratch_console
key=$(sti apikey create --env dev --scope write 2>&1 | grep -o 'sti_dev_[0-9a-f]*')

mode() {
  curl -fs -o /dev/null -D - -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/projects?per_page=1" \
    | tr -d '\r' | sed -n 's/^x-sti-mode: //p'
}

check() {
  local expected=$1 actual
  actual=$(mode)
  [ "$actual" = "$expected" ] || { echo "the API answers in '$actual' mode, expected '$expected'" >&2; exit 1; }
  say "schemathesis --checks all, ENABLE_STI $([ "$expected" = sti ] && echo on || echo off) ($expected mode)"
  # from the scratch folder: schemathesis and hypothesis keep their caches in the working directory
  (cd "$dir" && NO_COLOR=1 "$PY_VENV/bin/schemathesis" run "$repo/docs/openapi_v2.yaml" \
    --url "http://127.0.0.1:$port" \
    --checks all \
    --header "Authorization: Bearer $key" \
    --max-examples "${CONTRACT_EXAMPLES:-100}" \
    --workers 1)
}

check legacy
sti backfill --env dev >/dev/null
sti verify --env dev >/dev/null
sti flag --env dev on --reason "contract tests in STI mode"
check sti
