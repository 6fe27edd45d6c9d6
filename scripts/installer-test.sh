#!/usr/bin/env bash
# The installer test (seconds, no network, no root): every install step of scripts/tools.sh runs
# in its own shell with the scripts' options, HOME an empty folder and PATH holding only basic
# shell tools plus stubs. The stubs of the installers (cargo, npm, apt-get, rustup, pip, sudo)
# record their arguments and succeed, and "install" what they were asked for, so the step can go
# on as on a real machine. Each step must run to its end and call its installer with the expected
# package and version; on a machine that has every tool (stubs answering --version with the pinned
# versions) no step may call any installer; a failing installer must be named, with its command
# and exit status. scripts/test.sh runs this before any build.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Basic shell tools only: the real ones, linked into a folder of their own.
basic="$work/basic"
mkdir -p "$basic"
for tool in bash sh env cat cp mv ln mkdir rm rmdir ls grep sed head tail cut sort tr wc cmp \
  dirname basename chmod touch mktemp printf sleep true false; do
  real=$(type -P "$tool") || { echo "installer test: no $tool on this machine" >&2; exit 1; }
  ln -s "$real" "$basic/$tool"
done

# One stub for every tool; it acts on the name it was called by. $STUB_WORLD holds the log of
# installer calls (calls.log), the tools "installed" so far (bin/), and the fake postgres root.
cat >"$work/stub" <<'STUB'
#!/usr/bin/env bash
set -u
name=${0##*/}
world=$STUB_WORLD
log() { printf '%s\n' "$name $*" >>"$world/calls.log"; }
provide() { for t in "$@"; do ln -sf "$world/stub" "$world/bin/$t"; done; }
fail_if_asked() {
  if [ "${STUB_FAIL:-}" = "$name" ]; then echo "$name: simulated failure" >&2; exit 42; fi
}
case "$name" in
  id) [ "${1:-}" = -u ] && echo "${STUB_UID:-0}" || echo "uid=${STUB_UID:-0}" ;;
  sudo) log "$@"; exec "$@" ;;
  rustup)
    case "$*" in
      "target list --installed")
        echo x86_64-unknown-linux-gnu
        [ -e "$world/has/wasm32" ] && echo wasm32-unknown-unknown ;;
      "target add "*) log "$@"; fail_if_asked; touch "$world/has/wasm32" ;;
      *) echo "rustup stub: unexpected: $*" >&2; exit 1 ;;
    esac ;;
  cargo)
    case "$*" in
      "leptos --version")
        if [ -e "$world/has/cargo-leptos" ]; then echo "cargo-leptos 0.3.10"
        else echo 'error: no such command: `leptos`' >&2; exit 101; fi ;;
      "install "*)
        log "$@"; fail_if_asked
        case "$*" in
          *cargo-leptos*) touch "$world/has/cargo-leptos" ;;
          *wasm-bindgen-cli*) provide wasm-bindgen ;;
        esac ;;
      *) echo "cargo stub: unexpected: $*" >&2; exit 1 ;;
    esac ;;
  wasm-bindgen) echo "wasm-bindgen ${STUB_WASM_BINDGEN:-0.2.130}" ;;
  wasm-opt) echo "wasm-opt version ${STUB_WASM_OPT:-132} (version_${STUB_WASM_OPT:-132})" ;;
  chromium) echo "Chromium 156.0.8078.73 built on Debian" ;;
  npm)
    case "${1:-}" in
      --version) echo 11.19.1 ;;
      install) log "$@"; fail_if_asked; case "$*" in *binaryen@*) provide wasm-opt ;; esac ;;
      ci) log "$@"; fail_if_asked; mkdir -p node_modules/@playwright/test ;;
      *) echo "npm stub: unexpected: $*" >&2; exit 1 ;;
    esac ;;
  apt-get)
    log "$@"; fail_if_asked
    if [ "${1:-}" = install ]; then
      for package in "$@"; do
        case "$package" in
          nodejs | npm) provide npm ;;
          chromium) provide chromium ;;
          python3) provide python3 ;;
          python3-venv) touch "$world/has/venv" ;;
          postgresql) mkdir -p "$world/pg/15/bin" && ln -sf "$world/stub" "$world/pg/15/bin/initdb" ;;
          prometheus)
            # its postinst starts the server, which fails here unless policy-rc.d says no
            if [ ! -x "$STI_POLICY_RC_D" ] || { "$STI_POLICY_RC_D" prometheus start; [ $? -ne 101 ]; }; then
              echo "apt-get stub: prometheus postinst: invoke-rc.d prometheus start failed" >&2
              exit 100
            fi
            provide promtool prometheus ;;
        esac
      done
    fi ;;
  python3)
    case "$*" in
      "-c import ensurepip, venv") [ -e "$world/has/venv" ] ;;
      "-m venv "*) mkdir -p "$3/bin" && ln -sf "$world/stub" "$3/bin/pip" ;;
      *) echo "python3 stub: unexpected: $*" >&2; exit 1 ;;
    esac ;;
  pip) log "$@"; fail_if_asked; ln -sf "$world/stub" "${0%/*}/schemathesis" ;;
  schemathesis) echo "schemathesis 4.32.5" ;;
  initdb) echo "initdb (PostgreSQL) 15.18" ;;
  promtool | prometheus) echo "$name, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)" ;;
  *) echo "stub: unknown tool $name" >&2; exit 1 ;;
esac
STUB
chmod +x "$work/stub"

passed=0
failed=0
ok() { passed=$((passed + 1)); printf '  ok    %s\n' "$1"; }
not_ok() {
  failed=$((failed + 1))
  printf '  FAIL  %s\n' "$1"
  shift
  printf '%s\n' "$@" | sed 's/^/        /'
}

# A new world: what a fresh Debian machine with rustup has (apt-get, sudo, rustup, cargo,
# python3), plus the tools named in $1 (space-separated). Sets $world.
new_world() {
  world=$(mktemp -d "$work/world-XXXXXX")
  mkdir -p "$world/bin" "$world/has" "$world/home" "$world/pg" "$world/repo/end2end"
  cp "$work/stub" "$world/stub"
  cp "$repo/end2end/package-lock.json" "$world/repo/end2end/"
  : >"$world/calls.log"
  local tool
  for tool in id sudo apt-get rustup cargo python3 $1; do
    case "$tool" in
      wasm32) touch "$world/has/wasm32" ;;
      cargo-leptos) touch "$world/has/cargo-leptos" ;;
      venv) touch "$world/has/venv" ;;
      postgres) mkdir -p "$world/pg/15/bin" && ln -s "$world/stub" "$world/pg/15/bin/initdb" ;;
      policy-rc.d) printf '#!/bin/sh\n# kept: this machine has its own\nexit 101\n' >"$world/policy-rc.d"
        chmod +x "$world/policy-rc.d" ;;
      e2e) mkdir -p "$world/repo/end2end/node_modules/@playwright/test"
        cp "$repo/end2end/package-lock.json" "$world/repo/end2end/node_modules/.installed-lock.json" ;;
      schemathesis) mkdir -p "$world/home/.cache/sti-rollout/venv-schemathesis-4.32.5/bin"
        ln -s "$world/stub" "$world/home/.cache/sti-rollout/venv-schemathesis-4.32.5/bin/schemathesis" ;;
      *) ln -s "$world/stub" "$world/bin/$tool" ;;
    esac
  done
}

# Runs `$@` (steps of tools.sh) in a shell of its own in $world; sets $status, $out (stdout and
# stderr) and $calls (the installer calls, one per line).
run_steps() {
  status=0
  out=$(cd "$world/repo" && env -i HOME="$world/home" PATH="$world/bin:$basic" TERM=dumb \
    STUB_WORLD="$world" STI_PG_LIB="$world/pg" STI_POLICY_RC_D="$world/policy-rc.d" ${STUB_ENV:-} \
    bash -c 'set -euo pipefail; source "$0/scripts/tools.sh"; for step in "$@"; do "$step"; done; echo "steps ran to their end"' \
    "$repo" "$@" 2>&1) || status=$?
  calls=$(cat "$world/calls.log")
}

# case NAME TOOLS-PRESENT "STEP..." EXPECTED-CALLS (one per line, in order; empty: none)
check() {
  local name=$1 present=$2 steps=$3 expected=$4
  new_world "$present"
  # shellcheck disable=SC2086 # the steps are words
  run_steps $steps
  if [ "$status" -ne 0 ] || ! grep -q '^steps ran to their end$' <<<"$out"; then
    not_ok "$name" "exit status $status; output:" "$out"
  elif [ "$calls" != "$expected" ]; then
    not_ok "$name" "installer calls:" "${calls:-(none)}" "expected:" "${expected:-(none)}"
  elif [ -n "$expected" ] && [ "$(grep -c '^==> installing\|^==> adding' <<<"$out")" -eq 0 ]; then
    not_ok "$name" "it installed without saying so; output:" "$out"
  else
    ok "$name"
  fi
}

apt_update='apt-get update -qq'
apt() { printf '%s\napt-get install -y -qq %s' "$apt_update" "$*"; }

echo "installer test: each step on a machine without its tool"
check "wasm32 target" "" ensure_wasm_target 'rustup target add wasm32-unknown-unknown'
check "wasm-bindgen-cli" "" ensure_wasm_bindgen 'cargo install wasm-bindgen-cli --version 0.2.130'
STUB_ENV="STUB_WASM_BINDGEN=0.2.129" check "wasm-bindgen-cli 0.2.129 is replaced" "wasm-bindgen" \
  ensure_wasm_bindgen 'cargo install wasm-bindgen-cli --version 0.2.130'
check "wasm-opt, npm present" "npm" ensure_wasm_opt 'npm install -g --silent binaryen@132.0.0'
check "wasm-opt, no npm either" "" ensure_wasm_opt "$(apt nodejs npm)
npm install -g --silent binaryen@132.0.0"
STUB_ENV="STUB_WASM_OPT=108" check "Debian's wasm-opt 108 is not enough" "npm wasm-opt" ensure_wasm_opt \
  'npm install -g --silent binaryen@132.0.0'
check "cargo-leptos" "" ensure_cargo_leptos 'cargo install cargo-leptos --locked --version 0.3.10'
check "chromium" "" ensure_chromium "$(apt chromium)"
STUB_ENV="STUB_UID=1000" check "chromium, not root: through sudo" "" ensure_chromium "sudo $apt_update
$apt_update
sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
apt-get install -y -qq chromium"
check "postgresql" "" ensure_postgres "$(apt postgresql)"
# Debian's prometheus starts its server at install, which fails without a service manager.
check "prometheus (promtool), with a policy-rc.d of its own" "" ensure_prometheus \
  "$(apt --no-install-recommends prometheus)"
if [ -e "$world/policy-rc.d" ]; then
  not_ok "prometheus: its policy-rc.d is removed after the install" "$world/policy-rc.d is left"
else
  ok "prometheus: its policy-rc.d is removed after the install"
fi
check "prometheus, the machine's policy-rc.d" "policy-rc.d" ensure_prometheus \
  "$(apt --no-install-recommends prometheus)"
if grep -q "kept: this machine has its own" "$world/policy-rc.d" 2>/dev/null; then
  ok "prometheus: the machine's policy-rc.d is kept"
else
  not_ok "prometheus: the machine's policy-rc.d is kept" "it is gone or changed"
fi
check "end-to-end packages" "npm" ensure_e2e_packages 'npm ci --no-audit --no-fund --silent'
check "schemathesis, venv present" "venv" ensure_schemathesis \
  'pip install -q --disable-pip-version-check schemathesis==4.32.5'
check "schemathesis, no python3-venv" "" ensure_schemathesis "$(apt python3-venv)
pip install -q --disable-pip-version-check schemathesis==4.32.5"
check "every step of both README commands, from nothing" "" \
  "ensure_build_tools ensure_chromium ensure_postgres ensure_e2e_packages ensure_schemathesis ensure_prometheus" \
  "rustup target add wasm32-unknown-unknown
cargo install wasm-bindgen-cli --version 0.2.130
$(apt nodejs npm)
npm install -g --silent binaryen@132.0.0
cargo install cargo-leptos --locked --version 0.3.10
$(apt chromium)
$(apt postgresql)
npm ci --no-audit --no-fund --silent
$(apt python3-venv)
pip install -q --disable-pip-version-check schemathesis==4.32.5
$(apt --no-install-recommends prometheus)"

echo "installer test: every step on a machine with every tool"
all="wasm32 wasm-bindgen wasm-opt cargo-leptos npm chromium postgres e2e venv schemathesis promtool"
for step in ensure_wasm_target ensure_wasm_bindgen ensure_wasm_opt ensure_cargo_leptos ensure_node \
  ensure_chromium ensure_postgres ensure_e2e_packages ensure_schemathesis ensure_prometheus; do
  check "$step installs nothing" "$all" "$step" ""
done

echo "installer test: a failing installer is named"
for failing in "cargo ensure_cargo_leptos cargo install cargo-leptos --locked --version 0.3.10" \
  "apt-get ensure_chromium apt-get update -qq" \
  "apt-get ensure_prometheus apt-get update -qq" \
  "npm ensure_wasm_opt npm install -g --silent binaryen@132.0.0"; do
  read -r tool step command <<<"$failing"
  new_world "npm"
  STUB_ENV="STUB_FAIL=$tool" run_steps "$step"
  name="a failing $tool in $step"
  if [ "$status" -eq 0 ] || grep -q '^steps ran to their end$' <<<"$out"; then
    not_ok "$name" "it went on (exit status $status); output:" "$out"
  elif ! grep -q "$step failed" <<<"$out" || ! grep -qF "$command" <<<"$out" \
    || ! grep -q "exit status 42" <<<"$out"; then
    not_ok "$name" "the error does not name the step ($step), the command ($command) and exit status 42:" "$out"
  else
    ok "$name"
  fi
done

# A failing install of prometheus still removes the policy-rc.d it wrote.
new_world ""
STUB_ENV="STUB_FAIL=apt-get" run_steps ensure_prometheus
if [ "$status" -eq 42 ] && [ ! -e "$world/policy-rc.d" ]; then
  ok "a failing install of prometheus removes its policy-rc.d"
else
  not_ok "a failing install of prometheus removes its policy-rc.d" "exit status $status; output:" "$out"
fi

# Outside the install commands the ERR trap names the failure: here a test command's step.
new_world ""
status=0
out=$(cd "$world/repo" && env -i HOME="$world/home" PATH="$world/bin:$basic" STUB_WORLD="$world" \
  bash -c 'set -euo pipefail; source "$0/scripts/tools.sh"; STEP=formatting; cargo fmt --check; echo "went on"' \
  "$repo" 2>&1) || status=$?
if [ "$status" -eq 1 ] && grep -qx 'error: formatting failed: `cargo fmt --check` (exit status 1)' <<<"$out" \
  && ! grep -q 'went on' <<<"$out"; then
  ok "any other failing command, named by the ERR trap"
else
  not_ok "any other failing command, named by the ERR trap" "exit status $status; output:" "$out"
fi

echo "installer test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
