#!/usr/bin/env bash
# The berth CLI against the docker CLI, both driving the same berthd: the CLI's own start-up
# (`berth --version`, `berth version`), and `run --rm busybox true` end to end, CLI process
# included. (bench/daemon.sh compares berthd with dockerd; this one isolates the client.)
#
# Usage: bench/cli.sh [N]      (N timed runs of each, default 30; run as root)
# Env:   BERTH, BERTHD, BERTH_SHIM, BERTH_FIXTURE (default: $CARGO_TARGET_DIR/release/… or
#        target/release/…), DOCKER (default /usr/local/bin/docker), WARMUP (default 3)
set -euo pipefail

N=${1:-30}
WARMUP=${WARMUP:-3}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
BERTH=${BERTH:-$TARGET_DIR/release/berth}
BERTHD=${BERTHD:-$TARGET_DIR/release/berthd}
BERTH_SHIM=${BERTH_SHIM:-$TARGET_DIR/release/berth-shim}
BERTH_FIXTURE=${BERTH_FIXTURE:-$TARGET_DIR/release/berth-fixture}
DOCKER=${DOCKER:-$( [ -x /usr/local/bin/docker ] && echo /usr/local/bin/docker || command -v docker || true)}

die() {
  echo "bench: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root"
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ]; then die "N must be a positive integer, got '$N'"; fi
for b in "$BERTH" "$BERTHD" "$BERTH_SHIM" "$BERTH_FIXTURE"; do
  [ -x "$b" ] || die "$b missing: cargo build --release -p berth-cli -p berth-daemon -p berth-shim -p berth-testutil"
done
[ -n "$DOCKER" ] && [ -x "$DOCKER" ] || die "docker CLI not found: install it or set DOCKER"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (EPOCHREALTIME)"
export BERTH_SHIM

WORK=$(mktemp -d /tmp/bcb.XXXXXX)
BERTHD_PID=
cleanup() {
  set +e
  if [ -S "$WORK/s.sock" ]; then
    ids=$(BERTH_HOST=unix://$WORK/s.sock timeout 60 "$BERTH" ps -aq 2>/dev/null)
    [ -n "$ids" ] && BERTH_HOST=unix://$WORK/s.sock timeout 120 "$BERTH" rm -f $ids >/dev/null 2>&1
  fi
  if [ -n "$BERTHD_PID" ]; then
    kill -TERM "$BERTHD_PID" 2>/dev/null
    wait "$BERTHD_PID" 2>/dev/null
  fi
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BERTHD" --data-root "$WORK/d" --exec-root "$WORK/x" -H "unix://$WORK/s.sock" \
  --pidfile "$WORK/pid" --config-file "$WORK/none.json" --bridge=none --iptables=false >"$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
for _ in $(seq 300); do
  [ -S "$WORK/s.sock" ] && curl -sf --unix-socket "$WORK/s.sock" http://d/_ping >/dev/null 2>&1 && break
  kill -0 "$BERTHD_PID" 2>/dev/null || die "berthd exited: $(cat "$WORK/berthd.log")"
  sleep 0.05
done
export BERTH_HOST=unix://$WORK/s.sock DOCKER_HOST=unix://$WORK/s.sock DOCKER_CONFIG=$WORK/cfg
mkdir -p "$DOCKER_CONFIG"
echo '{}' >"$DOCKER_CONFIG/config.json"
"$BERTH_FIXTURE" rootfs-tar "$WORK/busybox.tar" >/dev/null
"$BERTH" import -c 'CMD ["sh"]' "$WORK/busybox.tar" busybox:latest >/dev/null

# Prints one ms figure per timed run of COMMAND...
time_runs() {
  local i t0 t1
  for ((i = 0; i < WARMUP; i++)); do "$@" >/dev/null 2>&1 || die "failed: $*"; done
  for ((i = 0; i < N; i++)); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || die "failed: $*"
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
  done
}

# median and p90 of the numbers on stdin
stats() {
  sort -n | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.9 + 0.5)]; if (p == "") p = v[NR]; printf "%.2f %.2f\n", m, p }'
}

row() { # LABEL MEDIAN P90 REF
  awk -v l="$1" -v m="$2" -v p="$3" -v r="$4" 'BEGIN { printf "%-34s %10.2f %10.2f %12.2f\n", l, m, p, (r > 0 ? m / r : 0) }'
}

echo "bench: $N runs each; $("$BERTH" --version)" >&2
read -r BV_M BV_P < <(time_runs "$BERTH" --version | stats)
read -r DV_M DV_P < <(time_runs "$DOCKER" --version | stats)
read -r BS_M BS_P < <(time_runs "$BERTH" version | stats)
read -r DS_M DS_P < <(time_runs "$DOCKER" version | stats)
read -r BR_M BR_P < <(time_runs "$BERTH" run --rm busybox true | stats)
read -r DR_M DR_P < <(time_runs "$DOCKER" run --rm busybox true | stats)

printf "%-34s %10s %10s %12s\n" "" "median ms" "p90 ms" "vs docker"
row "berth --version" "$BV_M" "$BV_P" "$DV_M"
row "docker --version" "$DV_M" "$DV_P" "$DV_M"
row "berth version (client+server)" "$BS_M" "$BS_P" "$DS_M"
row "docker version (client+server)" "$DS_M" "$DS_P" "$DS_M"
row "berth run --rm busybox true" "$BR_M" "$BR_P" "$DR_M"
row "docker run --rm busybox true" "$DR_M" "$DR_P" "$DR_M"
echo "(both CLIs drive the same berthd; 'vs docker' is the median ratio to the docker CLI's row)"
awk -v m="$BV_M" 'BEGIN { if (m > 5) { print "bench: berth --version median " m " ms is over the 5 ms target" > "/dev/stderr" } }'
