#!/bin/sh
# Per-container network setup (netns create + veth attach) p50/p90 over 200 iterations, inside a
# private network namespace. Target: <= 5 ms.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q -p berth-network --example netsetup
target="${CARGO_TARGET_DIR:-target}"
exec unshare -n "$target/release/examples/netsetup" "${1:-200}"
