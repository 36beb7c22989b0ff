#!/usr/bin/env bash
# berthd against dockerd: `docker run --rm --network none busybox true` through the docker CLI,
# the same create/start/wait/delete over plain HTTP (curl), idle daemon RSS, berth-shim RSS per
# running container, and `docker ps` with 200 running containers. See bench/README.md.
#
# Usage: bench/daemon.sh [N]      (N timed runs of each, default 30; run as root)
# Env:   BERTHD, BERTH_SHIM, BERTH_FIXTURE (default: $CARGO_TARGET_DIR/release/… or target/release/…)
#        DOCKER (default /usr/local/bin/docker, else docker on PATH)
#        DOCKERD (default: dockerd on PATH; set DOCKERD= to skip the comparison)
#        PS_CONTAINERS (running containers for the `docker ps` timing, default 200)
#        SHIM_CONTAINERS (running containers for the shim RSS, default 10)
#        WARMUP (default 3)
set -euo pipefail

N=${1:-30}
WARMUP=${WARMUP:-3}
PS_CONTAINERS=${PS_CONTAINERS:-200}
SHIM_CONTAINERS=${SHIM_CONTAINERS:-10}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
BERTHD=${BERTHD:-$TARGET_DIR/release/berthd}
BERTH_SHIM=${BERTH_SHIM:-$TARGET_DIR/release/berth-shim}
BERTH_FIXTURE=${BERTH_FIXTURE:-$TARGET_DIR/release/berth-fixture}
DOCKER=${DOCKER:-$( [ -x /usr/local/bin/docker ] && echo /usr/local/bin/docker || command -v docker || true)}
DOCKERD=${DOCKERD-$(command -v dockerd || true)}

die() {
  echo "bench: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root"
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ]; then die "N must be a positive integer, got '$N'"; fi
[ -x "$BERTHD" ] || die "$BERTHD missing: cargo build --release -p berth-daemon -p berth-shim -p berth-testutil (or set BERTHD)"
[ -x "$BERTH_SHIM" ] || die "$BERTH_SHIM missing: cargo build --release -p berth-shim (or set BERTH_SHIM)"
[ -x "$BERTH_FIXTURE" ] || die "$BERTH_FIXTURE missing: cargo build --release -p berth-testutil (or set BERTH_FIXTURE)"
[ -n "$DOCKER" ] && [ -x "$DOCKER" ] || die "docker CLI not found: install it or set DOCKER"
command -v curl >/dev/null || die "curl not found: install the curl package"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (EPOCHREALTIME)"
HYPERFINE=$(command -v hyperfine || true)
export BERTH_SHIM

# Short: unix socket paths under the exec roots must stay below 108 bytes.
WORK=$(mktemp -d /tmp/bdb.XXXXXX)
TAG=${WORK##*.}
NETNS="berth-bench-$TAG"
BERTHD_PID=
DOCKERD_PID=

# Removes what the benchmark started: containers (through their daemon), the daemons (by pid),
# leftover mounts under $WORK, the network namespace, the temp dir.
cleanup() {
  set +e
  for sock in "$WORK/berth.sock" "$WORK/docker.sock"; do
    [ -S "$sock" ] || continue
    ids=$(DOCKER_HOST=unix://$sock timeout 60 "$DOCKER" ps -aq 2>/dev/null)
    [ -n "$ids" ] && DOCKER_HOST=unix://$sock timeout 120 "$DOCKER" rm -f $ids >/dev/null 2>&1
  done
  for pid in $BERTHD_PID $DOCKERD_PID; do
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  # Shims (and dockerd's containerd) that outlived their daemon name $WORK on their command line.
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "$WORK/"; then kill -KILL "${p#/proc/}" 2>/dev/null; fi
  done
  awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  ip netns del "$NETNS" 2>/dev/null
  if ! awk -v w="$WORK/" 'index($5, w) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    rm -rf --one-file-system "$WORK"
  else
    echo "bench: mounts left under $WORK; not removing it" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_socket() { # SOCKET WHAT PID
  for _ in $(seq 600); do
    if curl -sf --unix-socket "$1" http://d/_ping >/dev/null 2>&1; then return 0; fi
    kill -0 "$3" 2>/dev/null || die "$2 exited during start; its log ends:
$(tail -n 15 "$WORK/$2.log" 2>/dev/null)"
    sleep 0.05
  done
  die "$2 did not answer /_ping within 30 s; its log ends:
$(tail -n 15 "$WORK/$2.log" 2>/dev/null)"
}

# Median and p90 (nearest rank) of the numbers on stdin, in ms with one decimal.
stats() {
  sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "- -"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    i = int(NR * 0.9 + 0.999); if (i < 1) i = 1; if (i > NR) i = NR
    printf "%.1f %.1f\n", m, v[i] }'
}

# Times COMMAND... N times (after WARMUP runs) in-process with EPOCHREALTIME; prints ms per run.
time_runs() {
  local i t0 t1
  for ((i = 0; i < WARMUP; i++)); do "$@" >/dev/null 2>&1 || die "warm-up of '$*' failed"; done
  for ((i = 0; i < N; i++)); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || die "'$*' failed"
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
  done
}

# Median ms of `docker ARGS` against SOCKET: hyperfine when installed, else the loop above.
time_docker() { # SOCKET ARGS...
  local sock=$1
  shift
  if [ -n "$HYPERFINE" ]; then
    DOCKER_HOST=unix://$sock "$HYPERFINE" -N -w "$WARMUP" -r "$N" --export-json "$WORK/hf.json" \
      "$DOCKER $*" >/dev/null 2>&1 || die "hyperfine '$DOCKER $*' failed"
    awk '/"times"/ { f = 1; next } f && /\]/ { exit } f { gsub(/[ ,]/, ""); if ($0 != "") printf "%.3f\n", $0 * 1000 }' \
      "$WORK/hf.json" | stats
  else
    DOCKER_HOST=unix://$sock time_runs "$DOCKER" "$@" | stats
  fi
}

# One container through the API with one curl process: create (named), start, wait, delete.
http_run() { # SOCKET
  local name="b$RANDOM$RANDOM"
  curl -sf --unix-socket "$1" -o /dev/null \
    -X POST -H 'Content-Type: application/json' \
    -d '{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}' \
    "http://d/v1.41/containers/create?name=$name" \
    --next -sf --unix-socket "$1" -o /dev/null -X POST "http://d/v1.41/containers/$name/start" \
    --next -sf --unix-socket "$1" -o /dev/null -X POST "http://d/v1.41/containers/$name/wait" \
    --next -sf --unix-socket "$1" -o /dev/null -X DELETE "http://d/v1.41/containers/$name"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

"$BERTH_FIXTURE" rootfs-tar "$WORK/busybox.tar" >/dev/null || die "berth-fixture rootfs-tar failed"

# --- berthd ---
"$BERTHD" --data-root "$WORK/bd" --exec-root "$WORK/bx" -H "unix://$WORK/berth.sock" \
  --pidfile "$WORK/berthd.pid" --config-file "$WORK/none.json" --log-level warn --bridge=none --iptables=false \
  >"$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
wait_socket "$WORK/berth.sock" berthd "$BERTHD_PID"
export DOCKER_HOST=unix://$WORK/berth.sock
"$DOCKER" import "$WORK/busybox.tar" busybox:latest >/dev/null || die "docker import into berthd failed"
IDLE_RSS=$(rss_kb "$BERTHD_PID")

echo "bench: $N runs each${HYPERFINE:+ (hyperfine)}; berthd $("$BERTHD" --version 2>/dev/null | awk '{ print $2 }')" >&2
read -r B_RUN_MED B_RUN_P90 < <(time_docker "$WORK/berth.sock" run --rm --network none busybox true)
read -r B_HTTP_MED B_HTTP_P90 < <(time_runs http_run "$WORK/berth.sock" | stats)
read -r FLOOR_MED _ < <(time_runs curl -sf --unix-socket "$WORK/berth.sock" -o /dev/null http://d/_ping | stats)

# Shim RSS: SHIM_CONTAINERS running containers, mean RSS and PSS of their shims.
for ((i = 0; i < SHIM_CONTAINERS; i++)); do
  "$DOCKER" run -d --network none busybox sleep 100000 >/dev/null || die "docker run -d failed"
done
SHIM_RSS=0 SHIM_PSS=0 SHIMS=0
for p in /proc/[0-9]*; do
  if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "berth-shim.*$WORK/bx"; then
    SHIM_RSS=$((SHIM_RSS + $(rss_kb "${p#/proc/}")))
    SHIM_PSS=$((SHIM_PSS + $(pss_kb "${p#/proc/}")))
    SHIMS=$((SHIMS + 1))
  fi
done
[ "$SHIMS" -gt 0 ] || die "no berth-shim processes found for $WORK/bx"

# docker ps with PS_CONTAINERS running.
for ((i = SHIM_CONTAINERS; i < PS_CONTAINERS; i++)); do
  "$DOCKER" run -d --network none busybox sleep 100000 >/dev/null || die "docker run -d failed"
done
RUNNING=$("$DOCKER" ps -q | wc -l)
read -r B_PS_MED B_PS_P90 < <(time_docker "$WORK/berth.sock" ps)
read -r B_PSAPI_MED _ < <(time_runs curl -sf --unix-socket "$WORK/berth.sock" -o /dev/null http://d/v1.41/containers/json | stats)
BUSY_RSS=$(rss_kb "$BERTHD_PID")
ids=$("$DOCKER" ps -aq)
[ -n "$ids" ] && "$DOCKER" rm -f $ids >/dev/null

# --- dockerd, when installed: its own data root, socket and network namespace ---
D_RUN_MED=- D_RUN_P90=- D_HTTP_MED=- D_HTTP_P90=- D_IDLE=-
if [ -n "$DOCKERD" ] && [ -x "$DOCKERD" ]; then
  echo '{}' >"$WORK/daemon.json"
  ip netns add "$NETNS" || die "ip netns add failed"
  ip netns exec "$NETNS" ip link set lo up
  # nsenter, not `ip netns exec`: that one remounts /sys for the namespace, which hides
  # /sys/fs/cgroup and dockerd refuses to start ("Devices cgroup isn't mounted").
  nsenter --net="/run/netns/$NETNS" "$DOCKERD" --data-root "$WORK/dd" --exec-root "$WORK/dx" \
    -H "unix://$WORK/docker.sock" --pidfile "$WORK/dockerd.pid" --bridge none --iptables=false \
    --ip6tables=false --config-file "$WORK/daemon.json" >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  wait_socket "$WORK/docker.sock" dockerd "$DOCKERD_PID"
  DOCKER_HOST=unix://$WORK/docker.sock "$DOCKER" import "$WORK/busybox.tar" busybox:latest >/dev/null ||
    die "docker import into dockerd failed"
  D_IDLE=$(rss_kb "$DOCKERD_PID")
  for p in /proc/[0-9]*; do
    if [ "$(cat "$p/comm" 2>/dev/null)" = containerd ] && tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "$WORK/dx"; then
      D_IDLE=$((D_IDLE + $(rss_kb "${p#/proc/}")))
    fi
  done
  read -r D_RUN_MED D_RUN_P90 < <(time_docker "$WORK/docker.sock" run --rm --network none busybox true)
  read -r D_HTTP_MED D_HTTP_P90 < <(time_runs http_run "$WORK/docker.sock" | stats)
else
  echo "bench: dockerd not installed (Debian: docker.io); no comparison" >&2
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "-") print "-"; else printf "%.1f", k / 1024 }'; }

echo
printf '%-44s %10s %10s %10s %10s %12s\n' "" "berthd" "p90" "dockerd" "p90" "berthd/dockerd"
printf '%-44s %10s %10s %10s %10s %12s\n' "docker run --rm --network none busybox true" "$B_RUN_MED" "$B_RUN_P90" "$D_RUN_MED" "$D_RUN_P90" "$(ratio "$B_RUN_MED" "$D_RUN_MED")"
printf '%-44s %10s %10s %10s %10s %12s\n' "HTTP create/start/wait/delete (one curl)" "$B_HTTP_MED" "$B_HTTP_P90" "$D_HTTP_MED" "$D_HTTP_P90" "$(ratio "$B_HTTP_MED" "$D_HTTP_MED")"
printf '%-44s %10s\n' "  curl /_ping (the client's own floor)" "$FLOOR_MED"
printf '%-44s %10s %10s %10s\n' "docker ps, $RUNNING running (ms)" "$B_PS_MED" "$B_PS_P90" ""
printf '%-44s %10s\n' "GET /containers/json, $RUNNING running (ms)" "$B_PSAPI_MED"
printf '%-44s %10s %10s %10s %10s %12s\n' "idle daemon RSS (MiB; dockerd+containerd)" "$(mib "$IDLE_RSS")" "" "$(mib "$D_IDLE")" "" "$(ratio "$IDLE_RSS" "$D_IDLE")"
printf '%-44s %10s\n' "berthd RSS with $RUNNING running (MiB)" "$(mib "$BUSY_RSS")"
printf '%-44s %10s\n' "berth-shim RSS per container (MiB)" "$(mib $((SHIM_RSS / SHIMS)))"
printf '%-44s %10s\n' "berth-shim PSS per container (MiB)" "$(mib $((SHIM_PSS / SHIMS)))"
echo
echo "targets: run <= 0.1 x dockerd (~20 ms), idle berthd <= 15 MiB, shim <= 2 MiB, ps of 200 <= 50 ms"
