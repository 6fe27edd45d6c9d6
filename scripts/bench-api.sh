#!/usr/bin/env bash
# Benchmarks the projects API (not a test): GET /api/projects/{id} under load on loopback, on
# prod's demo data (1M rows, backfilled and verified), in legacy and STI mode by turns — the flag
# switched between rounds, so both modes see the same machine state. Prints every round, the
# medians, and STI's median p99 over legacy's (the issue's bound: 1.5).
# Settings: ROUNDS (3), ROUND_SECONDS (10), CONNECTIONS (8).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
source scripts/pg.sh

rounds=${ROUNDS:-3}
say "building the release binary and the load generator (tools/api-load)"
ensure_build_tools
build_release
cargo build --release --quiet --manifest-path tools/api-load/Cargo.toml
load=tools/api-load/target/release/api-load

dir=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$dir"' EXIT
printf '[demo_rows]\ndev = 10\nstaging = 10\nprod = 1000000\n' >"$dir/sti.toml"
say "seeding 1M prod rows, backfilling and verifying them"
start_scratch_console
key=$(sti apikey create --env prod --scope read 2>&1 | grep -o 'sti_prod_[0-9a-f]*')
sti backfill --env prod --chunk 5000 --override-gate "benchmark data" >/dev/null
sti verify --env prod >/dev/null

results="$dir/results"
for round in $(seq "$rounds"); do
  for state in off on; do
    sti flag --env prod "$state" --reason "API benchmark round $round" >/dev/null
    line=$(API_URL="http://127.0.0.1:$port" API_KEY="$key" API_IDS=1000000 \
      API_CONNECTIONS="${CONNECTIONS:-8}" API_SECONDS="${ROUND_SECONDS:-10}" \
      "$load")
    echo "round $round: $line"
    echo "$line" >>"$results"
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [dict(kv.split("=") for kv in line.split()) for line in open(sys.argv[1])]
by = {m: [r for r in rows if r["mode"] == m] for m in ("legacy", "sti")}
med = {m: {k: statistics.median(float(r[k]) for r in rs) for k in ("rps", "p50_ms", "p99_ms")} for m, rs in by.items()}
for m in ("legacy", "sti"):
    print(f"{m:7} median of {len(by[m])} rounds: {med[m]['rps']:.0f} requests/s, p50 {med[m]['p50_ms']:.3f} ms, p99 {med[m]['p99_ms']:.3f} ms")
ratio = med["sti"]["p99_ms"] / med["legacy"]["p99_ms"]
print(f"STI p99 / legacy p99 = {ratio:.2f} (bound 1.5)")
PY
