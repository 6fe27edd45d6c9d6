#!/usr/bin/env bash
# Benchmarks what the change capture costs an application write (not a test): PUT
# /api/projects/{id} under load on loopback against dev's demo data (100 000 rows), with the
# capture off and on by turns — on after a live backfill installs it, off after a rollback
# removes it — so both see the same machine state; on SQLite, then on a throwaway PostgreSQL with
# durable settings. Prints every round, the medians and on/off ratios. (Raw single-row updates:
# `sti-rollout bench --writes`, run by scripts/bench.sh.)
# Settings: ROUNDS (3), ROUND_SECONDS (10), CONNECTIONS (4).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
source scripts/pg.sh

rounds=${ROUNDS:-3}
say "building the release binary and the load generator (tools/api-load)"
ensure_build_tools
ensure_postgres
build_release
cargo build --release --quiet --manifest-path tools/api-load/Cargo.toml
load=tools/api-load/target/release/api-load

server=""
scratch=()
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "${scratch[@]}"; pg_stop' EXIT
PG_SETTINGS="-c shared_buffers=1GB -c max_wal_size=4GB -c checkpoint_timeout=30min"
pg_start

# $1: the engine's name; $2: the config file's [environments] line for dev ("" for SQLite)
measure() {
  dir=$(mktemp -d)
  scratch+=("$dir")
  printf '%s\n[demo_rows]\ndev = 100000\nstaging = 10\nprod = 10\n' "$2" >"$dir/sti.toml"
  start_scratch_console
  key=$(sti apikey create --env dev --scope write 2>&1 | grep -o 'sti_dev_[0-9a-f]*')
  results="$dir/results"
  for round in $(seq "$rounds"); do
    for capture in off on; do
      if [ "$capture" = on ]; then
        sti backfill --env dev --chunk 5000 >/dev/null 2>&1
      else
        sti rollback --env dev --chunk 5000 >/dev/null 2>&1 || true
      fi
      line=$(API_URL="http://127.0.0.1:$port" API_KEY="$key" API_IDS=100000 API_WRITE=1 \
        API_CONNECTIONS="${CONNECTIONS:-4}" API_SECONDS="${ROUND_SECONDS:-10}" "$load")
      echo "$1 round $round: capture=$capture $line"
      echo "$capture $line" >>"$results"
    done
  done
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
  python3 - "$1" "$results" <<'PY'
import re, statistics, sys
rows = [l.split(" ", 1) for l in open(sys.argv[2]).read().splitlines()]
def med(capture, key):
    return statistics.median(float(re.search(key + r"=([0-9.]+)", l).group(1)) for c, l in rows if c == capture)
for key in ("rps", "p50_ms", "p99_ms"):
    off, on = med("off", key), med("on", key)
    print(f"{sys.argv[1]} median {key}: capture off {off:.3f}, on {on:.3f}, on/off {on / off:.2f}")
PY
}

measure SQLite ""
db="${STI_TEST_PG_URL%/postgres}/capture_bench"
"$PG_BIN/psql" "$STI_TEST_PG_URL" -qc "create database capture_bench" >/dev/null
measure PostgreSQL "$(printf '[environments]\ndev = "%s"' "$db")"
