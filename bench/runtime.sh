#!/usr/bin/env bash
# Start-to-exit cost of one container: `berth-runtime run` against `runc run` on the same busybox
# bundle running `true`, with the unshare+chroot floor beside them. See bench/README.md.
#
# Usage: bench/runtime.sh [N]     (N timed runs per runtime, default 50; run as root)
# Env:   BERTH_RUNTIME (default $CARGO_TARGET_DIR/release/berth-runtime or target/release/...)
#        RUNC (default: runc on PATH), BERTH_FIXTURE (berth-fixture, same default dir),
#        RSS_RUNS (runs under /usr/bin/time for peak RSS, default 5), WARMUP (default 3),
#        RUN_TIMEOUT (seconds before a hung run is killed and the benchmark fails, default 10)
set -euo pipefail

N=${1:-50}
RSS_RUNS=${RSS_RUNS:-5}
WARMUP=${WARMUP:-3}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
BERTH_RUNTIME=${BERTH_RUNTIME:-$TARGET_DIR/release/berth-runtime}
BERTH_FIXTURE=${BERTH_FIXTURE:-$TARGET_DIR/release/berth-fixture}
RUNC=${RUNC:-$(command -v runc || true)}
RUN_TIMEOUT=${RUN_TIMEOUT:-10}

die() {
  echo "bench: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root"
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ]; then die "N must be a positive integer, got '$N'"; fi
[ -x "$BERTH_RUNTIME" ] || die "runtime $BERTH_RUNTIME is not an executable (cargo build --release, or set BERTH_RUNTIME)"
if [ -z "$RUNC" ] || [ ! -x "$RUNC" ]; then die "runc not found: install the runc package or set RUNC"; fi
[ -x "$BERTH_FIXTURE" ] || die "fixture tool $BERTH_FIXTURE is missing (cargo build --release --workspace --bins, or set BERTH_FIXTURE)"
command -v unshare >/dev/null || die "unshare not found: install util-linux"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (EPOCHREALTIME)"
BERTH_RUNTIME=$(readlink -f "$BERTH_RUNTIME")
RUNC=$(readlink -f "$RUNC")
TIME_BIN=/usr/bin/time
[ -x "$TIME_BIN" ] || TIME_BIN=

WORK=$(mktemp -d /run/berth-bench.XXXXXX)
TAG=${WORK##*.}
CG_NAME="berth-bench-$TAG"

# Deletes any container a failed or interrupted run left, then the cgroups and the temp dir.
cleanup() {
  local name root dir id mnt
  set +e
  [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
  for name in berth runc; do
    root="$WORK/root-$name"
    for dir in "$root"/*/; do
      [ -d "$dir" ] || continue
      id=$(basename "$dir")
      if [ "$name" = berth ]; then
        timeout -k 2 "$RUN_TIMEOUT" "$BERTH_RUNTIME" --root "$root" delete --force "$id" >/dev/null 2>&1
      else
        timeout -k 2 "$RUN_TIMEOUT" "$RUNC" --root "$root" delete --force "$id" >/dev/null 2>&1
      fi
    done
  done
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) ~ /^cgroup2?$/) print $5; break } }' \
    /proc/self/mountinfo | while read -r mnt; do
    find "$mnt" -maxdepth 6 -depth -type d -path "*/$CG_NAME*" 2>/dev/null | while read -r dir; do
      rmdir "$dir" 2>/dev/null
    done
  done
  # Nothing is mounted under $WORK by us; --one-file-system guards against a runtime's leftovers.
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One busybox rootfs, and per runtime a bundle pointing at it with its own cgroupsPath. The path is
# relative, so each runtime puts the container's cgroup below the cgroup it runs in (ours).
command -v jq >/dev/null || die "jq not found: install the jq package"
"$BERTH_FIXTURE" bundle "$WORK/fixture" -- true >/dev/null || die "berth-fixture bundle failed"
ROOTFS="$WORK/fixture/rootfs"
for name in berth runc; do
  mkdir -p "$WORK/bundle-$name" "$WORK/root-$name"
  jq --arg r "$ROOTFS" --arg cg "$CG_NAME/$name" \
    '.root.path = $r | .linux.cgroupsPath = $cg | .process.args = ["true"] | .process.terminal = false' \
    "$WORK/fixture/config.json" >"$WORK/bundle-$name/config.json"
done

SEQ=0
# The command line of one run of $1, a fresh container id each time: berth, runc, the floor
# (unshare+chroot), and a bare fork+exec of the same `true` (what any run costs from this shell).
run_cmd() {
  SEQ=$((SEQ + 1))
  case "$1" in
    berth) CMD=("$BERTH_RUNTIME" --root "$WORK/root-berth" run --bundle "$WORK/bundle-berth" "b$TAG-$SEQ") ;;
    runc) CMD=("$RUNC" --root "$WORK/root-runc" run --bundle "$WORK/bundle-runc" "r$TAG-$SEQ") ;;
    unshare) CMD=(unshare --fork --pid --mount --net --uts --ipc chroot "$ROOTFS" /bin/true) ;;
    exec) CMD=("$ROOTFS/bin/busybox" true) ;;
  esac
}

# A watchdog instead of timeout(1) around each timed run (timeout's own fork and exec would add
# about 1.5 ms to every sample): time_one records the pid of the run in progress and when it started;
# the watchdog SIGKILLs that run if it is still going after RUN_TIMEOUT seconds. It sleeps with
# `read -t` on a fifo, so it forks nothing while the benchmark runs.
mkfifo "$WORK/tick"
(
  exec 9<>"$WORK/tick"
  while :; do
    read -r -t 1 -u 9 _ || true
    [ -d "$WORK" ] || exit 0
    read -r pid started 2>/dev/null <"$WORK/current" || continue
    if [ -z "$pid" ] || [ $((SECONDS - started)) -le "$RUN_TIMEOUT" ]; then continue; fi
    # Only a child of the benchmark shell (so never a recycled pid of someone else's).
    read -r _ _ _ ppid _ 2>/dev/null <"/proc/$pid/stat" || continue
    [ "$ppid" = "$$" ] && kill -KILL "$pid" 2>/dev/null
  done
) &
WATCHDOG=$!

# Times one run in microseconds with bash's EPOCHREALTIME: only the fork and exec of the measured
# command itself are in the sample.
time_one() {
  local t0 t1 pid rc=0
  run_cmd "$1"
  t0=${EPOCHREALTIME/./}
  "${CMD[@]}" </dev/null >/dev/null 2>"$WORK/err" &
  pid=$!
  echo "$pid $SECONDS" >"$WORK/current"
  wait "$pid" || rc=$?
  t1=${EPOCHREALTIME/./}
  : >"$WORK/current"
  if [ "$rc" -ne 0 ]; then
    echo "bench: $1 run failed (exit $rc): $(head -c 400 "$WORK/err")" >&2
    return 1
  fi
  echo $((t1 - t0)) >>"$WORK/times-$1"
}

KINDS=(berth runc unshare exec)
echo "warming up ($WARMUP runs each)..." >&2
for ((i = 0; i < WARMUP; i++)); do
  for k in "${KINDS[@]}"; do
    time_one "$k" || die "warm-up run of $k failed"
  done
done
for k in "${KINDS[@]}"; do : >"$WORK/times-$k"; done

# Interleaved, so drift in machine load hits all three alike, and the order rotates every round, so
# no runtime always runs first (right after the previous round's floor run) or last.
echo "timing $N runs each..." >&2
for ((i = 0; i < N; i++)); do
  for ((j = 0; j < ${#KINDS[@]}; j++)); do
    k=${KINDS[$(((i + j) % ${#KINDS[@]}))]}
    time_one "$k" || die "timed run of $k failed"
  done
done

# Peak RSS (kB): the largest of RSS_RUNS runs, as reported by GNU time's %M, which is the maximum
# over the measured process and every descendant it waited for.
peak_rss() {
  local best=0 v i
  [ -n "$TIME_BIN" ] || { echo n/a; return; }
  for ((i = 0; i < RSS_RUNS; i++)); do
    run_cmd "$1"
    timeout -k 2 "$RUN_TIMEOUT" "$TIME_BIN" -f %M -o "$WORK/rss" "${CMD[@]}" </dev/null >/dev/null 2>&1 ||
      die "rss run of $1 failed"
    v=$(tail -n 1 "$WORK/rss")
    [ "$v" -gt "$best" ] && best=$v
  done
  echo "$best"
}
declare -A RSS
for k in "${KINDS[@]}"; do RSS[$k]=$(peak_rss "$k"); done

# median and p90 (nearest rank) and min, in ms with two decimals.
stats() {
  sort -n "$WORK/times-$1" | awk '
    { v[NR] = $1 }
    END {
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      r = int(0.9 * NR); if (r < 0.9 * NR) r++
      printf "%.2f %.2f %.2f\n", med / 1000, v[r] / 1000, v[1] / 1000
    }'
}
declare -A MED P90 MIN
for k in "${KINDS[@]}"; do
  read -r "MED[$k]" "P90[$k]" "MIN[$k]" < <(stats "$k")
done

label() {
  case "$1" in
    berth) echo "berth-runtime run" ;;
    runc) echo "runc run" ;;
    unshare) echo "unshare+chroot (floor)" ;;
    exec) echo "fork+exec true" ;;
  esac
}
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

echo
echo "busybox bundle, command true, $N runs each (after $WARMUP warm-up), $(nproc) cpus, $(uname -r)"
echo "berth-runtime: $BERTH_RUNTIME"
echo "runc:          $RUNC ($("$RUNC" --version | head -n 1))"
echo
printf '%-24s %10s %10s %10s %14s %14s\n' "" "median ms" "p90 ms" "min ms" "peak RSS kB" "median/runc"
for k in "${KINDS[@]}"; do
  printf '%-24s %10s %10s %10s %14s %14s\n' "$(label "$k")" "${MED[$k]}" "${P90[$k]}" "${MIN[$k]}" \
    "${RSS[$k]}" "$(ratio "${MED[$k]}" "${MED[runc]}")"
done
echo
echo "berth/runc: median $(ratio "${MED[berth]}" "${MED[runc]}")x, p90 $(ratio "${P90[berth]}" "${P90[runc]}")x, peak RSS $(ratio "${RSS[berth]}" "${RSS[runc]}")x"
echo "berth over the unshare+chroot floor: median +$(awk -v a="${MED[berth]}" -v b="${MED[unshare]}" 'BEGIN { printf "%.2f", a - b }') ms"
