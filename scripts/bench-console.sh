#!/usr/bin/env bash
# Benchmarks the console (not a test): with a finished 1M-row prod backfill in the ledger,
# - the server-rendered environment page and overview, median of N requests, against GET /health measured in
#   the same run (the floor: one HTTP round trip through the same router and session guard);
# - how long a committed chunk takes to reach a subscriber of the pushed updates: for a live run,
#   the time from the run's commit (its updated_at) to the event's arrival, median and maximum.
# Uses curl and python3 only. Usage: scripts/bench-console.sh [requests, default 200]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
source scripts/pg.sh
N="${1:-200}"

ensure_build_tools
build_release
dir="$(mktemp -d)"
port=$(pg_free_port)
bin=target/release/sti-rollout
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$dir"' EXIT

say "seeding and backfilling prod (1M rows, chunks of 1000)"
STI_LOG=warn "$bin" --data-dir "$dir" migrate >/dev/null
STI_LOG=warn "$bin" --data-dir "$dir" seed --env prod --rows 1000000 >/dev/null
STI_LOG=warn "$bin" --data-dir "$dir" seed --env staging --rows 100000 >/dev/null
STI_LOG=warn "$bin" --data-dir "$dir" backfill --env prod --chunk 1000 --override-gate "benchmark data" >/dev/null
STI_LOG=warn "$bin" --data-dir "$dir" serve --addr "127.0.0.1:$port" >/dev/null 2>"$dir/serve.log" &
server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
jar="$dir/cookies"
generated=$(cat "$dir/initial-admin-password")
curl -fs -c "$jar" -o /dev/null -d "username=admin" --data-urlencode "password=$generated" \
  "http://127.0.0.1:$port/login"
# a generated password is replaced before anything else answers
curl -fs -b "$jar" -o /dev/null --data-urlencode "current=$generated" \
  --data-urlencode "new=benchmark passphrase" --data-urlencode "repeat=benchmark passphrase" \
  "http://127.0.0.1:$port/account/password"

times() { # url → one time_total per line, in ms
  for _ in $(seq "$N"); do curl -fs -b "$jar" -o /dev/null -w '%{time_total}\n' "$1"; done
}
say "environment page and overview vs /health, $N requests each"
page=$(times "http://127.0.0.1:$port/env/prod")
overview=$(times "http://127.0.0.1:$port/")
health=$(times "http://127.0.0.1:$port/health")
python3 - "$page" "$overview" "$health" <<'PY'
import statistics, sys
page, overview, health = ([float(x) * 1000 for x in arg.split()] for arg in sys.argv[1:4])
mp, mo, mh = statistics.median(page), statistics.median(overview), statistics.median(health)
p90 = lambda xs: statistics.quantiles(xs, n=10)[-1]
print(f"  /env/prod (1M-row run, 1000 chunks in the ledger): median {mp:.2f} ms, p90 {p90(page):.2f} ms")
print(f"  / (overview, counts every table; prod 1M + 1M):   median {mo:.2f} ms, p90 {p90(overview):.2f} ms")
print(f"  /health:                                          median {mh:.2f} ms")
print(f"  ratio page / health: {mp / mh:.1f}x   (budget: page median under 20 ms)")
print(f"  ratio overview / health: {mo / mh:.1f}x")
PY

say "overview with 8 viewers at once (as after a change event), $N requests"
t0=$(date +%s.%N)
together=$(seq "$N" | xargs -P8 -I{} curl -fs -b "$jar" -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/")
t1=$(date +%s.%N)
python3 - "$together" "$t0" "$t1" <<'PY'
import statistics, sys
times = [float(x) * 1000 for x in sys.argv[1].split()]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"  / with 8 at once: median {statistics.median(times):.2f} ms, p90 {statistics.quantiles(times, n=10)[-1]:.2f} ms, {len(times) / wall:.1f} pages/s")
PY

say "push latency: chunk commit → event received (staging, chunks of 1000, 100 ms apart)"
STI_LOG=warn "$bin" --data-dir "$dir" backfill --env staging --chunk 1000 --pause-ms 100 --override-gate "benchmark data" >/dev/null &
runner=$!
curl -sN -b "$jar" --max-time 60 "http://127.0.0.1:$port/events/staging" | python3 -c '
import json, statistics, sys, time
lags = []
for line in sys.stdin:
    if not line.startswith("data: "):
        continue
    now = time.time() * 1000
    view = json.loads(line[6:])
    run = view.get("run")
    if run and run["state"] == "running" and run["chunks"] > 0:
        lags.append(now - run["updated_at"])
    if run and run["state"] in ("completed", "failed", "cancelled"):
        break
if lags:
    print(f"  {len(lags)} updates: median {statistics.median(lags):.0f} ms, max {max(lags):.0f} ms (budget: under 1000 ms)")
else:
    print("  no updates received")
' || true   # curl ends on --max-time when the run outlasts it
wait "$runner"
