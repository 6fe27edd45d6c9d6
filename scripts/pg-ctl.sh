#!/usr/bin/env bash
# Stops or starts one throwaway cluster of pg.sh: `pg-ctl.sh DATA PORT stop|start`. The torture
# test restarts its database with it while a backfill runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh
case "${3:-}" in
  stop) pg_ctl_stop "$1" ;;
  start) pg_ctl_start "$1" "$2" ;;
  *) echo "usage: pg-ctl.sh DATA PORT stop|start" >&2; exit 2 ;;
esac
