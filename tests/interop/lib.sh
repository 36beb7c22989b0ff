# shellcheck shell=bash
# Shared helpers for the interop scripts in this folder. Sourced, never run.
#
# Each script drives one third-party engine (dockerd, podman, containerd) with berth-runtime as its
# OCI runtime, prints "ok <check>" or "FAIL <check>: <why>" per check, and closes with
# "<script>: N passed, M failed". Everything it starts lives under a private temp dir and is
# stopped and removed by an EXIT trap, also when a check fails or the script is interrupted.
#
# Environment:
#   BERTH_RUNTIME   runtime under test (default: $CARGO_TARGET_DIR/release/berth-runtime)
#   BERTH_FIXTURE   berth-fixture binary (default: $CARGO_TARGET_DIR/release/berth-fixture)
#   CARGO_TARGET_DIR  default: <repo>/target
#   INTEROP_TIMEOUT seconds allowed for one interaction with a daemon (default 30)

set -euo pipefail

INTEROP_NAME=$(basename "$0" .sh)
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
BERTH_RUNTIME=${BERTH_RUNTIME:-$TARGET_DIR/release/berth-runtime}
BERTH_FIXTURE=${BERTH_FIXTURE:-$TARGET_DIR/release/berth-fixture}
T=${INTEROP_TIMEOUT:-30}
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

PASSED=0
FAILED=0
# Cleanup steps, run last-registered first by the EXIT trap.
CLEANUPS=()

ok() {
  echo "ok $1"
  PASSED=$((PASSED + 1))
}

# The reason is folded onto one line (engines print multi-line errors) and cut at 400 characters.
fail() {
  local why
  why=$(printf '%s' "$2" | tr -s '\n\r' '  ' | cut -c1-400)
  echo "FAIL $1: $why"
  FAILED=$((FAILED + 1))
}

# Runs a command with the per-interaction time limit; a hung daemon call fails instead of hanging.
t() {
  timeout -k 5 "$T" "$@"
}

# Aborts the script with a setup failure (counted as one failed check) when something is missing.
die() {
  fail setup "$1"
  exit 1
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: install the $2 package"
}

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root"
}

# The runtime must be an absolute path: engines exec it from their own working directories.
resolve_runtime() {
  [ -x "$BERTH_RUNTIME" ] || die "runtime $BERTH_RUNTIME is not an executable (build it, or set BERTH_RUNTIME)"
  BERTH_RUNTIME=$(readlink -f "$BERTH_RUNTIME")
}

need_fixture() {
  [ -x "$BERTH_FIXTURE" ] || die "fixture tool $BERTH_FIXTURE is missing (cargo build --release --workspace --bins, or set BERTH_FIXTURE)"
}

on_exit() {
  local i
  set +e
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
    eval "${CLEANUPS[$i]}"
  done
}

add_cleanup() {
  CLEANUPS+=("$1")
}

finish() {
  trap - EXIT
  on_exit
  echo "$INTEROP_NAME: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# On an early exit (setup failure, signal) the trap cleans up and still prints the tally.
early_exit() {
  local rc=$?
  trap - EXIT
  on_exit
  echo "$INTEROP_NAME: $PASSED passed, $FAILED failed"
  [ "$rc" -ne 0 ] || rc=1
  exit "$rc"
}
trap early_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private temp dir for everything the script creates. $1: where (default /tmp).
make_workdir() {
  WORK=$(mktemp -d "${1:-/tmp}/berth-$INTEROP_NAME.XXXXXX")
  add_cleanup "remove_tree '$WORK'"
}

# Unmounts everything mounted at or below $1, deepest first (only our own private dirs are passed).
unmount_below() {
  local dir=$1 mp
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  # mountinfo field 5 is the mount point, with spaces escaped as \040.
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
  done
}

remove_tree() {
  local dir=$1
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  unmount_below "$dir"
  rm -rf --one-file-system "$dir" 2>/dev/null || rm -rf --one-file-system "$dir" || true
}

# Pids of processes whose command line mentions $1 (a path unique to this run), excluding us.
pids_mentioning() {
  local needle=$1 p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] && continue
    if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -- "$needle"; then
      echo "$p"
    fi
  done
}

# Sends TERM to pid $1 (started by us), waits up to $2 seconds, then KILL.
stop_pid() {
  local pid=$1 wait_s=${2:-20} i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Removes every cgroup dir named $1 (a name unique to this run, so only ours match) in every
# mounted hierarchy, killing any process left inside first: those can only be ours.
remove_cgroups() {
  local name=$1 mnt dir d pid
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) ~ /^cgroup2?$/) print $5; break } }' \
    /proc/self/mountinfo | while read -r mnt; do
    find "$mnt" -maxdepth 6 -type d -name "$name" -prune 2>/dev/null | while read -r dir; do
      find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
        kill -KILL "$pid" 2>/dev/null || true
      done
      # Children before parents; a cgroup frozen by a failed pause must be thawed to empty it.
      find "$dir" -depth -type d 2>/dev/null | while read -r d; do
        [ -f "$d/freezer.state" ] && echo THAWED >"$d/freezer.state" 2>/dev/null
        rmdir "$d" 2>/dev/null || { sleep 0.5; rmdir "$d" 2>/dev/null; } || true
      done
    done
  done
}

# Strips carriage returns and trailing blank space, for comparing terminal output.
clean() {
  tr -d '\r' | sed -e 's/[[:space:]]*$//'
}

# Runs the command line $1 under script(1), so it has a pty as its terminal even where we have none
# (CI). Its stdin is a fifo opened read-write: it never delivers EOF, so an engine's attach does not
# see stdin close (and tear the session down) before the container has printed. Output without CRs.
in_pty() {
  local fifo="$WORK/pty-stdin"
  [ -p "$fifo" ] || mkfifo "$fifo"
  timeout -k 5 "$T" script -qec "$1" /dev/null <>"$fifo" 2>&1 | clean
}

# check_tty CHECK CMDLINE: CMDLINE, run with a pty as its terminal, must exit 0 and print the
# /dev/pts path of the container's own terminal (so the runtime set up the console socket).
check_tty() {
  local out rc=0
  out=$(in_pty "$2") || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "$1" "exited $rc: $(tail -n 3 <<<"$out")"
  elif grep -qE '/dev/pts/[0-9]+$' <<<"$out"; then
    ok "$1"
  else
    fail "$1" "printed no /dev/pts path: $out"
  fi
}

# Sets MEM_CG to the memory cgroup of process $1 and MEM_LIMIT_FILE to that cgroup's limit file on
# the host (cgroup v1 memory hierarchy, or the unified one on a v2 host), MEM_LIMIT_INSIDE to where
# the container sees its own limit.
# shellcheck disable=SC2034 # the MEM_* results are read by the scripts that source this file
memory_cgroup_of() {
  if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    MEM_CG=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$1/cgroup" 2>/dev/null || true)
    MEM_LIMIT_FILE="/sys/fs/cgroup/memory$MEM_CG/memory.limit_in_bytes"
    MEM_LIMIT_INSIDE=/sys/fs/cgroup/memory/memory.limit_in_bytes
  else
    MEM_CG=$(awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup" 2>/dev/null || true)
    MEM_LIMIT_FILE="/sys/fs/cgroup$MEM_CG/memory.max"
    MEM_LIMIT_INSIDE=/sys/fs/cgroup/memory.max
  fi
}

# FROZEN or THAWED: the freezer state of process $1's cgroup, as the kernel has it (an engine's own
# "paused" flag only says the runtime's pause command exited 0).
freezer_state() {
  local cg
  if [ -d /sys/fs/cgroup/freezer ]; then
    cg=$(awk -F: '$2 ~ /(^|,)freezer(,|$)/ { print $3 }' "/proc/$1/cgroup" 2>/dev/null || true)
    cat "/sys/fs/cgroup/freezer$cg/freezer.state" 2>/dev/null || echo "no freezer cgroup for pid $1"
  else
    cg=$(awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup" 2>/dev/null || true)
    case "$(awk '$1 == "frozen" { print $2 }' "/sys/fs/cgroup$cg/cgroup.events" 2>/dev/null)" in
      1) echo FROZEN ;;
      0) echo THAWED ;;
      *) echo "no cgroup.events for pid $1" ;;
    esac
  fi
}

# expect_eq CHECK WANT GOT: ok when equal, FAIL with both values otherwise.
expect_eq() {
  if [ "$2" = "$3" ]; then
    ok "$1"
  else
    fail "$1" "want '$2', got '$3'"
  fi
}
