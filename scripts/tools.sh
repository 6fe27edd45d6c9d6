# Sourced by run.sh and test.sh: installs each tool the build needs when it is missing, and says
# so. Every tool comes from a registry this machine reaches (crates.io, npm, Debian); nothing is
# downloaded from GitHub, and no tool is allowed to fetch its own browser.

CARGO_LEPTOS_VERSION=0.3.10   # 0.3.11 needs rustc 1.96
WASM_BINDGEN_VERSION=0.2.130  # must equal the wasm-bindgen pinned in Cargo.toml
BINARYEN_VERSION=132.0.0      # Debian's binaryen 108 produces WebAssembly that breaks at runtime
SCHEMATHESIS_VERSION=4.32.5   # the projects API's contract tests, from PyPI
# outside target/ so that `cargo clean` keeps it
PY_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/sti-rollout/venv-schemathesis-$SCHEMATHESIS_VERSION"

export PATH="$HOME/.cargo/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  say "installing Debian packages: $*"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_wasm_target() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && return
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
}

ensure_cargo_leptos() {
  if cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION"; then return; fi
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (once; about 15 minutes on 2 cores)"
  cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION"
}

ensure_wasm_bindgen() {
  if wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then return; fi
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once; about 3 minutes)"
  # no --locked: its lock file names a webpki-roots release the registry here does not have
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
}

ensure_node() {
  command -v npm >/dev/null 2>&1 && return
  apt_install nodejs npm
}

ensure_wasm_opt() {
  local version
  version=$(wasm-opt --version 2>/dev/null | grep -o 'version [0-9]*' | head -n1 | cut -d' ' -f2)
  if [ -n "$version" ] && [ "$version" -ge 116 ]; then return; fi
  ensure_node
  say "installing wasm-opt from npm's binaryen $BINARYEN_VERSION"
  npm install -g --silent "binaryen@$BINARYEN_VERSION" >/dev/null
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

ensure_postgres() {
  PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    apt_install postgresql
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  export PG_BIN
}

ensure_schemathesis() {
  [ -x "$PY_VENV/bin/schemathesis" ] && return
  command -v python3 >/dev/null || apt_install python3
  # Debian's python3 makes virtualenvs only with python3-venv (it brings ensurepip)
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $PY_VENV"
  rm -rf "$PY_VENV"
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

ensure_e2e_packages() {
  ensure_node
  if [ -d end2end/node_modules/@playwright/test ] \
    && cmp -s end2end/package-lock.json end2end/node_modules/.installed-lock.json 2>/dev/null; then
    return
  fi
  say "installing the end-to-end test packages (npm ci; no browser download)"
  (cd end2end && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.installed-lock.json)
}

# The release build: the server binary and the optimised WebAssembly in target/site.
build_release() {
  say "building (cargo leptos build --release)"
  cargo leptos build --release
}
