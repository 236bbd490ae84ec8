#!/usr/bin/env bash
# Installs what the tests need and runs every test. This is the README's
# test command and what CI runs (.ci/run). Safe to run again: each install
# step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Real peers the end-to-end tests talk to (Debian packages).
need_pkgs=()
[ -x /usr/bin/prometheus ] || need_pkgs+=(prometheus)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
[ -x /usr/bin/victoria-metrics ] || need_pkgs+=(victoria-metrics)
[ -x /usr/bin/prometheus-node-exporter ] || need_pkgs+=(prometheus-node-exporter)
[ -x /usr/bin/etcd ] || need_pkgs+=(etcd-server)
[ -x /usr/bin/prometheus-alertmanager ] || need_pkgs+=(prometheus-alertmanager)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# kubectl top against the metrics API (the image ships kubectl; Debian's
# kubernetes-client where it does not).
command -v kubectl >/dev/null 2>&1 || need_pkgs+=(kubernetes-client)
command -v npm >/dev/null 2>&1 || need_pkgs+=(nodejs npm)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  step "installing ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# pyarrow reads persisted blocks as an outside Parquet reader would.
if ! python3 -c "import pyarrow" 2>/dev/null; then
  step "installing pyarrow"
  python3 -m pip install --quiet --disable-pip-version-check pyarrow
fi

# kubernetes-validate checks deploy/'s manifests against a current schema.
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  step "installing kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi

# playwright-core drives Debian's chromium in the dashboard's browser test
# (version pinned by tests/browser/package-lock.json).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  step "installing playwright-core (npm)"
  npm ci --prefix tests/browser --no-audit --no-fund >/dev/null
fi

step "rust toolchain: wasm32 target, rustfmt, clippy"
rustup target add wasm32-unknown-unknown >/dev/null
rustup component add rustfmt clippy >/dev/null

# One target dir for every step, release profile throughout, so the
# dependencies are compiled once for build, tests and the binary.
export CARGO_TERM_COLOR=never

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path web/Cargo.toml -- --check

step "cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --release --workspace

# The dashboard's logic (URL state, units, completion, charts' maths) on
# the host; its own target dir, as build.rs's wasm build has another.
step "dashboard unit tests (web/)"
cargo test --manifest-path web/Cargo.toml --target-dir target/web-host

# The conformance runner's per-file counts and its closing
# "N passed, M failed, K skipped" line (the harness hides a passing
# test's output above; this re-run takes a second or two).
step "PromQL conformance summary"
cargo test --release -p promql --test conformance -- --nocapture 2>&1 \
  | grep -E '^[^ ]+\.test: |^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$'
