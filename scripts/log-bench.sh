#!/usr/bin/env bash
# The log benchmark (docs/BENCHMARKS.md): installs its peers (ripgrep,
# sqlite3, zstd from Debian), builds Vigil, runs bench/src/bin/log_bench.rs.
# Arguments go to log-bench, e.g. `bash scripts/log-bench.sh --gb 0.2`.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in ripgrep:rg sqlite3:sqlite3 zstd:zstd bc:bc; do
  command -v "${p#*:}" >/dev/null || need+=("${p%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release -p vigil -p vigil-bench
exec target/release/log-bench "$@"
