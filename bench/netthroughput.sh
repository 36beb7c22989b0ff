#!/bin/sh
# Bulk TCP throughput through berth's bridge, veth and nftables DNAT against a bare veth pair,
# inside a private network namespace. Argument: MiB per run (default 1024).
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q -p berth-network --example netthroughput
target="${CARGO_TARGET_DIR:-target}"
exec unshare -n "$target/release/examples/netthroughput" "${1:-1024}"
