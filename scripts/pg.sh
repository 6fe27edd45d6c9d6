# Sourced by test.sh: a throwaway PostgreSQL cluster from the installed binaries, run as the
# `postgres` user on a free loopback port, its data under target/ (or a private temporary folder
# when `postgres` cannot reach target/). `pg_start` exports STI_TEST_PG_URL; `pg_stop` removes it.

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# For scripts that test or measure a console (contract.sh, bench-api.sh): the release binary on
# the scratch folder $dir, configured by $dir/sti.toml, on a free port. Sets `port` and `server`
# (the binary's own pid, for the caller's exit trap), defines `sti` (the CLI on the same data),
# and returns once /health answers.
start_scratch_console() {
  bin=target/release/sti-rollout
  port=$(pg_free_port)
  sti() { STI_LOG=warn "$bin" --data-dir "$dir/data" --config "$dir/sti.toml" "$@"; }
  mkdir -p "$dir/data"
  STI_LOG=warn "$bin" --data-dir "$dir/data" --config "$dir/sti.toml" serve --addr "127.0.0.1:$port" \
    >"$dir/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 900); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.2
  done
  echo "the console did not start: $(tail -n 3 "$dir/serve.log")" >&2
  return 1
}

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}

pg_start() {
  PG_PORT=$(pg_free_port)
  PG_DATA="$PWD/target/pg-test-$PG_PORT"
  mkdir -p "$PG_DATA"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_DATA"
    if ! su postgres -s /bin/sh -c "test -w '$PG_DATA'"; then
      rmdir "$PG_DATA"
      PG_DATA=$(mktemp -d /tmp/sti-pg-XXXXXX)
      chown postgres: "$PG_DATA"
    fi
  fi
  say "starting a throwaway PostgreSQL ($("$PG_BIN/postgres" --version | awk '{print $3}')) on port $PG_PORT"
  pg_as_owner "'$PG_BIN/initdb' -D '$PG_DATA/data' -U postgres -A trust --no-sync -E UTF8 >'$PG_DATA/initdb.log' 2>&1"
  # by default fsync is off: the cluster lives for one test run and nothing in it must survive a
  # crash; PG_SETTINGS replaces that (the benchmark runs with durable settings)
  pg_ctl_start "$PG_DATA" "$PG_PORT"
  export STI_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

# Starts the cluster in $1 (made by pg_start) on port $2.
pg_ctl_start() {
  local settings=${PG_SETTINGS:-"-c fsync=off -c synchronous_commit=off -c full_page_writes=off"}
  pg_as_owner "'$PG_BIN/pg_ctl' -D '$1/data' -l '$1/server.log' -w -t 60 start \
    -o \"-p $2 -k '$1' -c listen_addresses=127.0.0.1 -c max_connections=200 $settings\"" >/dev/null
}

# Stops the cluster in $1 as an operator's restart would (`-m fast`: sessions are cut off).
pg_ctl_stop() {
  pg_as_owner "'$PG_BIN/pg_ctl' -D '$1/data' -m fast -w -t 60 stop" >/dev/null
}

# A second throwaway cluster for the torture test, which stops and starts it while a backfill
# runs: exports STI_TORTURE_PG_URL and STI_TORTURE_PG_CTL (a command; `stop` or `start` after it).
pg_start_torture() {
  local data=${PG_DATA:-} port=${PG_PORT:-} url=${STI_TEST_PG_URL:-}
  pg_start
  TORTURE_PG_DATA=$PG_DATA
  export STI_TORTURE_PG_URL=$STI_TEST_PG_URL
  export STI_TORTURE_PG_CTL="env PG_BIN='$PG_BIN' bash '$PWD/scripts/pg-ctl.sh' '$PG_DATA' $PG_PORT"
  PG_DATA=$data PG_PORT=$port STI_TEST_PG_URL=$url
}

pg_stop_torture() {
  [ -n "${TORTURE_PG_DATA:-}" ] || return 0
  local data=${PG_DATA:-}
  PG_DATA=$TORTURE_PG_DATA
  pg_stop
  PG_DATA=$data TORTURE_PG_DATA=
}

pg_stop() {
  [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA/data" ] || return 0
  pg_as_owner "'$PG_BIN/pg_ctl' -D '$PG_DATA/data' -m immediate -w stop" >/dev/null 2>&1 || true
  rm -rf "$PG_DATA"
  PG_DATA=
}
