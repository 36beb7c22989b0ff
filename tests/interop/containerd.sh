#!/usr/bin/env bash
# A private containerd (own root, state, sockets; CRI and the opt plugin disabled) driving
# berth-runtime through the runc v2 shim (`ctr run --runc-binary`), on the fixture bundle's rootfs.
# Checks run/echo, exit code, a tty, detached task + exec + ps, pause/resume, kill (TERM, KILL),
# a memory limit, and delete.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need_cmd containerd containerd
need_cmd ctr containerd
need_cmd containerd-shim-runc-v2 containerd
need_cmd script bsdutils
resolve_runtime
need_fixture

make_workdir /tmp
RUN=$(mktemp -d /run/berth-ctrd.XXXXXX)
add_cleanup "remove_tree '$RUN'"
CG_PARENT="berth-interop-${RUN##*.}"
add_cleanup "remove_cgroups '$CG_PARENT'"
SOCK="$RUN/containerd.sock"
NS=berth-interop
LOG="$WORK/containerd.log"
# The shims put their sockets here (named by a hash of our address, so they do not collide).
for d in /run/containerd /run/containerd/s /run/containerd/fifo; do
  [ -e "$d" ] || add_cleanup "rmdir '$d' 2>/dev/null || true"
done

mkdir -p "$WORK/root" "$RUN/state" "$WORK/fifo"
cat >"$WORK/config.toml" <<EOF
version = 2
root = "$WORK/root"
state = "$RUN/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/opt"
EOF

CTR=(ctr --address "$SOCK" --namespace "$NS")
ctr_() {
  t "${CTR[@]}" "$@"
}

stop_daemon() {
  local id pid
  if kill -0 "$CONTAINERD_PID" 2>/dev/null; then
    for id in $(timeout 20 "${CTR[@]}" task ls -q 2>/dev/null); do
      timeout 20 "${CTR[@]}" task kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.3
    for id in $(timeout 20 "${CTR[@]}" container ls -q 2>/dev/null); do
      timeout 20 "${CTR[@]}" task delete -f "$id" >/dev/null 2>&1 || true
      timeout 20 "${CTR[@]}" container delete "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_pid "$CONTAINERD_PID" 20
  # Shims outlive containerd by design; ours name our socket in their command lines.
  for pid in $(pids_mentioning "$SOCK"); do
    stop_pid "$pid" 5
  done
}

echo "# $(containerd --version | awk '{print $1, $3}') runtime=$BERTH_RUNTIME"
containerd --config "$WORK/config.toml" --log-level warn >"$LOG" 2>&1 &
CONTAINERD_PID=$!
add_cleanup stop_daemon

for ((i = 0; i < 30 * 4; i++)); do
  timeout 5 "${CTR[@]}" version >/dev/null 2>&1 && break
  if ! kill -0 "$CONTAINERD_PID" 2>/dev/null; then
    tail -n 20 "$LOG" >&2
    die "containerd exited during startup (log above)"
  fi
  sleep 0.25
done
timeout 5 "${CTR[@]}" version >/dev/null 2>&1 || {
  tail -n 20 "$LOG" >&2
  die "containerd did not answer within 30s"
}

"$BERTH_FIXTURE" bundle "$WORK/bundle" >/dev/null || die "berth-fixture bundle failed"
ROOTFS="$WORK/bundle/rootfs"
[ -x "$ROOTFS/bin/sh" ] || die "fixture bundle has no $ROOTFS/bin/sh"

# ctr run options shared by every container: our runtime, private runtime root and fifo dir,
# a cgroup below our own (a relative path is resolved against the shim's cgroup, which is ours),
# and PATH (a bare rootfs has no image config to supply it).
run_opts() {
  echo --runc-binary "$BERTH_RUNTIME" --runc-root "$RUN/runtime" --fifo-dir "$WORK/fifo" \
    --cgroup "$CG_PARENT/$1" --env PATH=/usr/sbin:/usr/bin:/sbin:/bin --rootfs
}

# Task status (RUNNING, PAUSED, STOPPED, ...) from `ctr task ls`.
task_status() {
  ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'
}

# Waits up to 10s for task $1 to reach status $2.
wait_status() {
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(task_status "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}

# shellcheck disable=SC2046
if out=$(ctr_ run --rm $(run_opts c-echo) "$ROOTFS" c-echo echo hi 2>&1); then
  expect_eq run-echo hi "$out"
else
  fail run-echo "ctr run failed: $out"
fi

rc=0
# shellcheck disable=SC2046
ctr_ run --rm $(run_opts c-exit) "$ROOTFS" c-exit sh -c 'exit 3' >/dev/null 2>&1 || rc=$?
expect_eq exit-code 3 "$rc"

check_tty tty "${CTR[*]} run --rm -t $(run_opts c-tty) $ROOTFS c-tty tty"

# shellcheck disable=SC2046
if out=$(ctr_ run -d --memory-limit 67108864 $(run_opts c-long) "$ROOTFS" c-long sleep 300 2>&1) &&
  wait_status c-long RUNNING; then
  ok run-detached

  # shellcheck disable=SC2016 # expanded by the container's shell
  if out=$(ctr_ task exec --fifo-dir "$WORK/fifo" --exec-id e1 c-long sh -c 'echo exec-$((6 * 7))' 2>&1); then
    expect_eq exec exec-42 "$out"
  else
    fail exec "ctr task exec failed: $out"
  fi

  rc=0
  ctr_ task exec --fifo-dir "$WORK/fifo" --exec-id e2 c-long sh -c 'exit 5' >/dev/null 2>&1 || rc=$?
  expect_eq exec-exit-code 5 "$rc"

  check_tty exec-tty "${CTR[*]} task exec --fifo-dir $WORK/fifo -t --exec-id e3 c-long tty"

  pid=$(ctr_ task ls 2>/dev/null | awk '$1 == "c-long" { print $2 }')
  if out=$(ctr_ task ps c-long 2>&1) && echo "$out" | awk 'NR > 1 { print $1 }' | grep -qx "$pid"; then
    ok ps
  else
    fail ps "ctr task ps does not list init pid $pid: $out"
  fi

  memory_cgroup_of "$pid"
  case "$MEM_CG" in
    *"/$CG_PARENT/c-long") expect_eq memory-limit 67108864 "$(cat "$MEM_LIMIT_FILE" 2>&1)" ;;
    *) fail memory-limit "task cgroup '$MEM_CG' is not the requested $CG_PARENT/c-long" ;;
  esac

  if ctr_ task pause c-long >/dev/null 2>&1; then
    expect_eq pause "PAUSED FROZEN" "$(task_status c-long) $(freezer_state "$pid")"
  else
    fail pause "ctr task pause failed"
  fi
  if ctr_ task resume c-long >/dev/null 2>&1; then
    expect_eq resume "RUNNING THAWED" "$(task_status c-long) $(freezer_state "$pid")"
    out=$(ctr_ task exec --fifo-dir "$WORK/fifo" --exec-id e4 c-long echo alive 2>&1) || true
    expect_eq exec-after-resume alive "$out"
  else
    fail resume "ctr task resume failed"
  fi

  if ctr_ task kill -s SIGKILL c-long >/dev/null 2>&1 && wait_status c-long STOPPED; then
    ok kill
  else
    fail kill "task not STOPPED after SIGKILL: $(task_status c-long)"
  fi
  if ctr_ task delete c-long >/dev/null 2>&1 && ctr_ container delete c-long >/dev/null 2>&1 &&
    ! ctr_ container ls -q 2>/dev/null | grep -qx c-long; then
    ok delete
  else
    fail delete "ctr task/container delete failed"
  fi
else
  fail run-detached "ctr run -d failed: $out"
fi

# SIGTERM reaches a pid 1 that handles it; its exit status comes back through the shim.
# shellcheck disable=SC2046
if out=$(ctr_ run -d $(run_opts c-term) "$ROOTFS" c-term sh -c 'trap "exit 7" TERM; while :; do sleep 0.2; done' 2>&1) &&
  wait_status c-term RUNNING; then
  sleep 0.3
  if ctr_ task kill c-term >/dev/null 2>&1 && wait_status c-term STOPPED; then
    out=$(ctr_ task delete c-term 2>&1) || true
    case "$out" in
      *"exit code 7"*) ok kill-term ;;
      *) fail kill-term "task delete reported '$out', want exit status 7" ;;
    esac
  else
    fail kill-term "task not STOPPED after SIGTERM: $(task_status c-term)"
  fi
  ctr_ container delete c-term >/dev/null 2>&1 || true
else
  fail kill-term "ctr run -d failed: $out"
fi

finish
