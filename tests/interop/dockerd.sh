#!/usr/bin/env bash
# dockerd (20.10, through its managed containerd and the runc v2 shim) with berth-runtime added as
# runtime "berth". A private daemon: own data-root, exec-root, pidfile, socket, managed containerd
# under its own exec-root, no bridge and no firewall rules, container cgroups below our own cgroup.
# Checks run/echo, a tty, detached run + exec, pause/unpause, stop (TERM and KILL paths),
# --memory, and exit code propagation.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need_cmd dockerd docker.io
need_cmd docker docker.io
need_cmd script bsdutils
need_cmd tar tar
resolve_runtime
need_fixture

make_workdir /tmp
# Sockets live under /run (short paths; unix socket paths are limited to 108 bytes).
RUN=$(mktemp -d /run/berth-interop.XXXXXX)
add_cleanup "remove_tree '$RUN'"
CG_PARENT="berth-interop-${RUN##*.}"
add_cleanup "remove_cgroups '$CG_PARENT'"
SOCK="$RUN/docker.sock"
EXEC_ROOT="$RUN/exec"
DATA_ROOT="$WORK/data"
LOG="$WORK/dockerd.log"
mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$WORK/cli"
# The trust key would otherwise be written to /etc/docker/key.json.
printf '{"deprecated-key-path": "%s"}\n' "$WORK/key.json" >"$WORK/daemon.json"
# dockerd and containerd's shims also use fixed dirs; remove them at the end if we made them
# (cleanups run last-registered first, so children go before parents).
for d in /run/containerd /run/containerd/s /run/docker /run/docker/plugins; do
  [ -e "$d" ] || add_cleanup "rmdir '$d' 2>/dev/null || true"
done
export DOCKER_CONFIG="$WORK/cli"
export DOCKER_HOST="unix://$SOCK"
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

docker_() {
  t docker "$@"
}

# overlay2 where the data-root's filesystem takes an overlay mount, vfs otherwise.
pick_storage_driver() {
  local p="$WORK/ovl-probe"
  mkdir -p "$p/l" "$p/u" "$p/w" "$p/m"
  if mount -t overlay overlay -o "lowerdir=$p/l,upperdir=$p/u,workdir=$p/w" "$p/m" 2>/dev/null; then
    umount "$p/m"
    rm -rf "$p"
    echo overlay2
  else
    rm -rf "$p"
    echo vfs
  fi
}
DRIVER=${DOCKER_STORAGE_DRIVER:-$(pick_storage_driver)}

# Stops our dockerd (it stops its managed containerd), then anything still running that was started
# for this daemon: shims and containerd mention our exec-root in their command lines.
stop_daemon() {
  local ids pid
  if [ -S "$SOCK" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    ids=$(timeout 20 docker ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
  fi
  stop_pid "$DOCKERD_PID" 30
  for pid in $(pids_mentioning "$EXEC_ROOT"); do
    stop_pid "$pid" 5
  done
}

echo "# dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) storage=$DRIVER runtime=$BERTH_RUNTIME"
dockerd \
  --data-root "$DATA_ROOT" \
  --exec-root "$EXEC_ROOT" \
  --pidfile "$RUN/docker.pid" \
  -H "unix://$SOCK" \
  --config-file "$WORK/daemon.json" \
  --bridge=none --iptables=false --ip-masq=false --userland-proxy=false \
  --storage-driver "$DRIVER" \
  --exec-opt native.cgroupdriver=cgroupfs \
  --cgroup-parent "$CG_PARENT" \
  --add-runtime "berth=$BERTH_RUNTIME" \
  --log-level warn \
  >"$LOG" 2>&1 &
DOCKERD_PID=$!
add_cleanup stop_daemon

for ((i = 0; i < 60 * 4; i++)); do
  timeout 5 docker version >/dev/null 2>&1 && break
  if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
    tail -n 20 "$LOG" >&2
    die "dockerd exited during startup (log above)"
  fi
  sleep 0.25
done
timeout 5 docker version >/dev/null 2>&1 || {
  tail -n 20 "$LOG" >&2
  die "dockerd did not answer within 60s"
}

"$BERTH_FIXTURE" rootfs-tar "$WORK/rootfs.tar" >/dev/null || die "berth-fixture rootfs-tar failed"
docker_ import "$WORK/rootfs.tar" busybox:latest >/dev/null || die "docker import of the busybox rootfs failed"

RUNX=(run --runtime berth --network none --pull never)

# 1. Plain run, output through the shim's pipes.
if out=$(docker_ "${RUNX[@]}" --rm busybox echo hi 2>&1); then
  expect_eq run-echo hi "$out"
else
  fail run-echo "docker run failed: $out"
fi

# 2. Exit code propagation.
rc=0
docker_ "${RUNX[@]}" --rm busybox sh -c 'exit 3' >/dev/null 2>&1 || rc=$?
expect_eq exit-code 3 "$rc"

# 3. A tty (console socket); in_pty gives the docker CLI a pty even with no terminal around us.
check_tty tty "docker ${RUNX[*]} --rm -it busybox tty"

# 4. Detached container, exec, pause/unpause, stop.
if cid=$(docker_ "${RUNX[@]}" -d busybox sleep 300 2>&1); then
  ok run-detached
  # shellcheck disable=SC2016 # expanded by the container's shell
  if out=$(docker_ exec "$cid" sh -c 'echo exec-$((6 * 7))' 2>&1); then
    expect_eq exec exec-42 "$out"
  else
    fail exec "docker exec failed: $out"
  fi

  rc=0
  docker_ exec "$cid" sh -c 'exit 5' >/dev/null 2>&1 || rc=$?
  expect_eq exec-exit-code 5 "$rc"

  check_tty exec-tty "docker exec -it $cid tty"

  if out=$(docker_ top "$cid" 2>&1) && echo "$out" | grep -q 'sleep 300'; then
    ok top
  else
    fail top "docker top (runtime ps) gave: $out"
  fi

  pid=$(docker_ inspect -f '{{.State.Pid}}' "$cid" 2>/dev/null || echo 0)
  if docker_ pause "$cid" >/dev/null 2>&1; then
    expect_eq pause "true FROZEN" "$(docker_ inspect -f '{{.State.Paused}}' "$cid" 2>&1) $(freezer_state "$pid")"
  else
    fail pause "docker pause failed"
  fi
  if docker_ unpause "$cid" >/dev/null 2>&1; then
    expect_eq unpause "false THAWED" "$(docker_ inspect -f '{{.State.Paused}}' "$cid" 2>&1) $(freezer_state "$pid")"
    out=$(docker_ exec "$cid" echo alive 2>&1) || true
    expect_eq exec-after-unpause alive "$out"
  else
    fail unpause "docker unpause failed"
  fi

  # sleep is pid 1 and has no TERM handler, so stop escalates to KILL after 1s: 137.
  if docker_ stop -t 1 "$cid" >/dev/null 2>&1; then
    expect_eq stop-kill "false 137" "$(docker_ inspect -f '{{.State.Running}} {{.State.ExitCode}}' "$cid" 2>&1)"
  else
    fail stop-kill "docker stop failed"
  fi
  docker_ rm -f "$cid" >/dev/null 2>&1 || true
else
  fail run-detached "docker run -d failed: $cid"
fi

# 5. stop delivers TERM to a pid 1 that handles it.
if cid=$(docker_ "${RUNX[@]}" -d busybox sh -c 'trap "exit 7" TERM; while :; do sleep 0.2; done' 2>&1); then
  sleep 0.5
  if docker_ stop -t 20 "$cid" >/dev/null 2>&1; then
    expect_eq stop-term "false 7" "$(docker_ inspect -f '{{.State.Running}} {{.State.ExitCode}}' "$cid" 2>&1)"
  else
    fail stop-term "docker stop failed"
  fi
  docker_ rm -f "$cid" >/dev/null 2>&1 || true
else
  fail stop-term "docker run -d failed: $cid"
fi

# 6. --memory reaches the container's cgroup: on the host and as seen from inside.
if cid=$(docker_ "${RUNX[@]}" -d --memory 64m busybox sleep 300 2>&1); then
  pid=$(docker_ inspect -f '{{.State.Pid}}' "$cid" 2>/dev/null || echo 0)
  memory_cgroup_of "$pid"
  case "$MEM_CG" in
    *"/$CG_PARENT/"*) ok cgroup-parent ;;
    *) fail cgroup-parent "container cgroup '$MEM_CG' is not below --cgroup-parent $CG_PARENT" ;;
  esac
  expect_eq memory-limit 67108864 "$(cat "$MEM_LIMIT_FILE" 2>&1)"
  expect_eq memory-limit-inside 67108864 "$(docker_ exec "$cid" cat "$MEM_LIMIT_INSIDE" 2>&1)"
  docker_ rm -f "$cid" >/dev/null 2>&1 || true
else
  fail memory-limit "docker run --memory 64m failed: $cid"
fi

# 7. docker rm -f of a running container (kill --all / delete --force path) leaves nothing behind.
if cid=$(docker_ "${RUNX[@]}" -d busybox sleep 300 2>&1); then
  if docker_ rm -f "$cid" >/dev/null 2>&1 && [ -z "$(docker_ ps -aq --no-trunc -f "id=$cid")" ]; then
    ok rm-force
  else
    fail rm-force "docker rm -f left the container behind"
  fi
else
  fail rm-force "docker run -d failed: $cid"
fi

finish
