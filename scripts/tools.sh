# Sourced by every script: installs each tool a build or test needs when it is missing, one line
# per tool it installs. Every tool comes from a registry this machine reaches (crates.io, npm,
# Debian); nothing is downloaded from GitHub, and no tool is allowed to fetch its own browser.
#
# The callers run under `set -euo pipefail`, so detection never relies on a failing `$(...)`:
# `version_of` and the `if`s below turn "not installed" into an answer, not an exit. Anything
# that does fail ends the script with one line naming the step, the command and its exit status
# (the ERR trap below, and `must` for the install commands themselves).
# scripts/installer-test.sh runs every step here against stubs (scripts/test.sh runs it first).

CARGO_LEPTOS_VERSION=0.3.10   # 0.3.11 needs rustc 1.96
WASM_BINDGEN_VERSION=0.2.130  # must equal the wasm-bindgen pinned in Cargo.toml
BINARYEN_VERSION=132.0.0      # Debian's binaryen 108 produces WebAssembly that breaks at runtime
WASM_OPT_MIN=116              # the oldest wasm-opt known to build a working site here
SCHEMATHESIS_VERSION=4.32.5   # the projects API's contract tests, from PyPI
STI_PG_LIB=${STI_PG_LIB:-/usr/lib/postgresql}   # where Debian puts each PostgreSQL version's bin/
STI_POLICY_RC_D=${STI_POLICY_RC_D:-/usr/sbin/policy-rc.d}   # what Debian asks before starting a service
# outside target/ so that `cargo clean` keeps it
PY_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/sti-rollout/venv-schemathesis-$SCHEMATHESIS_VERSION"

export PATH="$HOME/.cargo/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

say() {
  if [ -t 2 ]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

# The step a failure happened in: the innermost ensure_*/build_* function, else the test
# command's current step ($STEP), else the script itself.
current_step() {
  local name
  for name in "${FUNCNAME[@]}"; do
    case $name in ensure_* | build_*) printf '%s' "$name"; return ;; esac
  done
  printf '%s' "${STEP:-${0##*/}}"
}

on_error() {
  local status=$1 command=$2
  [ -n "${STI_ERROR_REPORTED:-}" ] && return
  printf 'error: %s failed: `%s` (exit status %d)\n' "$(current_step)" "$command" "$status" >&2
  export STI_ERROR_REPORTED=1 # a subshell's failure is reported once, not again by its parent
}
set -o errtrace
trap 'on_error $? "$BASH_COMMAND"' ERR

# Runs a command; when it fails, names the step and the exact command (as run, unlike the ERR
# trap's unexpanded text), then stops.
must() {
  local status=0
  "$@" || status=$?
  [ "$status" -eq 0 ] && return
  printf 'error: %s failed: `%s` (exit status %d)\n' "$(current_step)" "$*" "$status" >&2
  export STI_ERROR_REPORTED=1
  exit "$status"
}

# The first line `$@` prints (its version, say), or nothing when it is missing or fails.
version_of() {
  { "$@" 2>/dev/null || true; } | head -n1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: $(current_step) needs root to run \`$*\`: run it as root, or install sudo" >&2
    exit 1
  fi
}

apt_install() {
  say "installing Debian packages: $*"
  must as_root apt-get update -qq
  # through env: sudo does not pass the caller's environment on
  must as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_wasm_target() {
  case $(rustup target list --installed 2>/dev/null || true) in *wasm32-unknown-unknown*) return ;; esac
  say "adding the wasm32-unknown-unknown target"
  must rustup target add wasm32-unknown-unknown
}

ensure_cargo_leptos() {
  case $(version_of cargo leptos --version) in *" $CARGO_LEPTOS_VERSION") return ;; esac
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (once; about 15 minutes on 2 cores)"
  must cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION"
}

ensure_wasm_bindgen() {
  case $(version_of wasm-bindgen --version) in *" $WASM_BINDGEN_VERSION") return ;; esac
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once; about 3 minutes)"
  # no --locked: its lock file names a webpki-roots release the registry here does not have
  must cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
}

ensure_node() {
  command -v npm >/dev/null 2>&1 && return
  apt_install nodejs npm
}

ensure_wasm_opt() {
  local version
  version=$(version_of wasm-opt --version) # "wasm-opt version 132 (version_132)"
  version=${version#wasm-opt version }
  version=${version%% *}
  case $version in
    '' | *[!0-9]*) ;;
    *) if [ "$version" -ge "$WASM_OPT_MIN" ]; then return; fi ;;
  esac
  ensure_node
  say "installing wasm-opt from npm's binaryen $BINARYEN_VERSION"
  must npm install -g --silent "binaryen@$BINARYEN_VERSION" >/dev/null
}

ensure_build_tools() {
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_wasm_opt
  ensure_cargo_leptos
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return
  apt_install chromium
}

# The bin/ folder of the newest PostgreSQL under $STI_PG_LIB with an initdb, or nothing.
newest_pg_bin() {
  local dir newest=""
  for dir in "$STI_PG_LIB"/*/bin; do
    [ -x "$dir/initdb" ] || continue
    newest=$(printf '%s\n%s\n' "$newest" "$dir" | sort -V | tail -n1)
  done
  printf '%s' "$newest"
}

ensure_postgres() {
  PG_BIN=${PG_BIN:-$(newest_pg_bin)}
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    apt_install postgresql
    PG_BIN=$(newest_pg_bin)
    if [ -z "$PG_BIN" ]; then
      echo "error: $(current_step): postgresql is installed, but no $STI_PG_LIB/*/bin/initdb" >&2
      exit 1
    fi
  fi
  export PG_BIN
}

ensure_schemathesis() {
  [ -x "$PY_VENV/bin/schemathesis" ] && return
  command -v python3 >/dev/null 2>&1 || apt_install python3
  # Debian's python3 makes virtualenvs only with python3-venv (it brings ensurepip)
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $PY_VENV"
  rm -rf "$PY_VENV"
  must python3 -m venv "$PY_VENV"
  must "$PY_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# promtool checks and tests the alert rules in deploy/prometheus (Debian's prometheus 2.42).
# The package starts its server when it is installed, and without a service manager (a
# container) a failing start fails the install. Nothing here needs that server, so unless the
# machine has a policy-rc.d already, one of ours says no to service starts during the install.
ensure_prometheus() {
  command -v promtool >/dev/null 2>&1 && return
  if [ -e "$STI_POLICY_RC_D" ]; then
    apt_install --no-install-recommends prometheus
    return
  fi
  say "writing $STI_POLICY_RC_D for the install: the prometheus service is not started"
  must as_root sh -c 'printf "#!/bin/sh\nexit 101\n" >"$0" && chmod 755 "$0"' "$STI_POLICY_RC_D"
  local status=0
  (apt_install --no-install-recommends prometheus) || status=$?
  must as_root rm -f "$STI_POLICY_RC_D" # removed whether the install worked or not
  [ "$status" -eq 0 ] || exit "$status"
}

ensure_e2e_packages() {
  ensure_node
  if [ -d end2end/node_modules/@playwright/test ] \
    && cmp -s end2end/package-lock.json end2end/node_modules/.installed-lock.json; then
    return
  fi
  say "installing the end-to-end test packages (npm ci; no browser download)"
  pushd end2end >/dev/null
  must npm ci --no-audit --no-fund --silent
  cp package-lock.json node_modules/.installed-lock.json
  popd >/dev/null
}

# The release build: the server binary and the optimised WebAssembly in target/site. Every
# script builds the binary this way (see .cargo/config.toml for plain `cargo build`).
build_release() {
  say "building (cargo leptos build --release --precompress)"
  # --precompress writes a .br and a .gz beside every file of the site, which the console serves
  cargo leptos build --release --precompress
}
