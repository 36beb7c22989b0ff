#!/usr/bin/env bash
# Pull/push benchmark of issue 4: a 256 MiB image of four 64 MiB incompressible gzip layers,
# pushed to a local docker-registry (Debian's, distribution 2.8) on 127.0.0.1 and pulled back into
# an empty store: downloaded, verified, unpacked into snapshots, recorded. Root (unpack writes
# whiteouts and owners). The registry and stores live in temp dirs removed at the end.
#
#   bench/pull.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v docker-registry >/dev/null || { echo "install docker-registry (apt-get install docker-registry)" >&2; exit 1; }
out=$(cargo test --release -q -p berth-distribution --test pull_perf -- --ignored --nocapture 2>&1) || {
  echo "$out" >&2
  exit 1
}
echo "$out" | grep '^BENCH'
