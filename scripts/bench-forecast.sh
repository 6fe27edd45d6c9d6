#!/usr/bin/env bash
# Measures the backfill forecast's error on the demo data (not a test): dev (10 000 rows), then
# staging (100 000), then prod (1 000 000), each a live backfill on SQLite with the same pacing.
# Before staging and prod it computes the forecast the overview gives — the environment before
# it's measured copy rate (rows over its chunks' own time, from the control database's ledger),
# scaled by this environment's rows, plus one pause after every chunk but the last
# (`domain::forecast::paced_seconds`) — then runs the backfill and compares with its wall time
# (created to finished). Prints each pair and the forecast/actual ratio, ROUNDS times.
# Settings: ROUNDS (3), CHUNK (5000), PAUSE_MS (50).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
trap 'say "failed at line $LINENO"' ERR

rounds=${ROUNDS:-3}
chunk=${CHUNK:-5000}
pause=${PAUSE_MS:-50}
command -v sqlite3 >/dev/null || { say "needs sqlite3 (apt-get install sqlite3)"; exit 1; }
ensure_build_tools
build_release
cli=target/release/sti-rollout

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# $1: data dir, $2: environment — the copy rate of its newest backfill, rows per second
rate() {
  sqlite3 "$1/control.db" "select 1000.0 * sum(c.rows_read) / sum(c.duration_ms) from run_chunks c
    where c.environment = '$2' and c.run_id = (select max(run_id) from runs where environment = '$2')"
}

# $1: data dir, $2: environment — the wall seconds of its newest run
took() {
  sqlite3 "$1/control.db" "select (finished_at - created_at) / 1000.0 from runs
    where environment = '$2' order by run_id desc limit 1"
}

backfill() {
  "$cli" --data-dir "$1" backfill --env "$2" --chunk "$chunk" --pause-ms "$pause" \
    --override-gate "forecast benchmark" >/dev/null 2>&1
}

printf '%-5s %-18s %10s %12s %10s %8s\n' round pair rows forecast_s actual_s ratio
for round in $(seq 1 "$rounds"); do
  data="$scratch/round-$round"
  mkdir -p "$data"
  for env_rows in dev:10000 staging:100000 prod:1000000; do
    "$cli" --data-dir "$data" seed --env "${env_rows%%:*}" --rows "${env_rows##*:}" >/dev/null 2>&1
  done
  backfill "$data" dev
  previous=dev
  for env in staging prod; do
    rows=$(sqlite3 "$data/$env.db" "select count(*) from projects")
    forecast=$(awk -v rows="$rows" -v rate="$(rate "$data" "$previous")" -v chunk="$chunk" -v pause="$pause" \
      'BEGIN { chunks = int((rows + chunk - 1) / chunk); printf "%.2f", rows / rate + (chunks - 1) * pause / 1000 }')
    backfill "$data" "$env"
    actual=$(took "$data" "$env")
    ratio=$(awk -v f="$forecast" -v a="$actual" 'BEGIN { printf "%.2f", f / a }')
    printf '%-5s %-18s %10s %12s %10s %8s\n' "$round" "$previous → $env" "$rows" "$forecast" "$actual" "$ratio"
    previous=$env
  done
done
