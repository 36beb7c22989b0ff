#!/usr/bin/env bash
# podman (through conmon) with berth-runtime as its OCI runtime. Private storage root, run root,
# tmpdir and containers.conf; no network; container cgroups below our own cgroup.
# Checks run/echo, exit code, a tty, detached run + exec + stop, pause/unpause.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

need_root
need_cmd podman podman
need_cmd conmon conmon
need_cmd script bsdutils
resolve_runtime
need_fixture

make_workdir /tmp
# conmon's attach sockets live under the run root: keep its path short.
RUNROOT=$(mktemp -d /run/berth-podman.XXXXXX)
add_cleanup "remove_tree '$RUNROOT'"
CG_NAME="berth-interop-${RUNROOT##*.}"
add_cleanup "remove_cgroups '$CG_NAME'"
# An absolute cgroup parent below our own cgroup: the memory one on a v1 host (here
# /process_api/<hash>; our cgroup in the other v1 hierarchies is /), the unified one on v2.
OWN_CG=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { m = $3 } $1 == "0" { u = $3 } END { print (m != "" ? m : u) }' /proc/self/cgroup)
CG_PARENT="${OWN_CG%/}/$CG_NAME"

# conmon calls the runtime without --root, so it keeps state in its default dir; podman keeps a blob
# info cache at a fixed path. Remove what we made (the runtime dirs only if left empty).
for d in /run/runc /run/berth /run/berth-runtime; do
  [ -e "$d" ] || add_cleanup "rmdir '$d' 2>/dev/null || true"
done
if [ ! -e /var/lib/containers ]; then
  add_cleanup "rm -rf /var/lib/containers"
elif [ ! -e /var/lib/containers/cache/blob-info-cache-v1.boltdb ]; then
  add_cleanup "rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb; rmdir /var/lib/containers/cache 2>/dev/null || true"
fi

mkdir -p "$WORK/storage" "$WORK/tmp" "$WORK/cni" "$WORK/volumes"
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = []
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/events.log"
runtime = "berth"
tmp_dir = "$WORK/tmp"
volume_path = "$WORK/volumes"
no_pivot_root = false

[engine.runtimes]
berth = ["$BERTH_RUNTIME"]

[network]
network_backend = "cni"
network_config_dir = "$WORK/cni"
EOF
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$RUNROOT/storage"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"
export CONTAINERS_STORAGE_CONF="$WORK/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$WORK/registries.conf"
: >"$WORK/registries.conf"

PODMAN=(podman --root "$WORK/storage" --runroot "$RUNROOT/storage" --tmpdir "$WORK/tmp"
  --runtime "$BERTH_RUNTIME" --cgroup-manager cgroupfs --events-backend file
  --storage-driver overlay)
podman_() {
  t "${PODMAN[@]}" "$@"
}

# Removes every container of this private store, then stops anything conmon left behind.
stop_all() {
  local pid
  timeout 60 "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  for pid in $(pids_mentioning "$RUNROOT"); do
    stop_pid "$pid" 5
  done
}
add_cleanup stop_all

echo "# $(podman --version) runtime=$BERTH_RUNTIME"
"$BERTH_FIXTURE" rootfs-tar "$WORK/rootfs.tar" >/dev/null || die "berth-fixture rootfs-tar failed"
podman_ import "$WORK/rootfs.tar" localhost/busybox:latest >/dev/null 2>"$WORK/import.err" ||
  die "podman import failed: $(tail -n 3 "$WORK/import.err")"

IMG=localhost/busybox:latest
RUNX=(run --pull never --network none --cgroup-parent "$CG_PARENT")

if out=$(podman_ "${RUNX[@]}" --rm "$IMG" echo hi 2>&1); then
  expect_eq run-echo hi "$out"
else
  fail run-echo "podman run failed: $out"
fi

rc=0
podman_ "${RUNX[@]}" --rm "$IMG" sh -c 'exit 3' >/dev/null 2>&1 || rc=$?
expect_eq exit-code 3 "$rc"

check_tty tty "${PODMAN[*]} ${RUNX[*]} --rm -it $IMG tty"

if cid=$(podman_ "${RUNX[@]}" -d "$IMG" sleep 300 2>&1); then
  ok run-detached
  # shellcheck disable=SC2016 # expanded by the container's shell
  if out=$(podman_ exec "$cid" sh -c 'echo exec-$((6 * 7))' 2>&1); then
    expect_eq exec exec-42 "$out"
  else
    fail exec "podman exec failed: $out"
  fi

  rc=0
  podman_ exec "$cid" sh -c 'exit 5' >/dev/null 2>&1 || rc=$?
  expect_eq exec-exit-code 5 "$rc"

  check_tty exec-tty "${PODMAN[*]} exec -it $cid tty"

  pid=$(podman_ inspect -f '{{.State.Pid}}' "$cid" 2>/dev/null || echo 0)
  if podman_ pause "$cid" >/dev/null 2>&1; then
    expect_eq pause "paused FROZEN" "$(podman_ inspect -f '{{.State.Status}}' "$cid" 2>&1) $(freezer_state "$pid")"
  else
    fail pause "podman pause failed"
  fi
  if podman_ unpause "$cid" >/dev/null 2>&1; then
    expect_eq unpause "running THAWED" "$(podman_ inspect -f '{{.State.Status}}' "$cid" 2>&1) $(freezer_state "$pid")"
    out=$(podman_ exec "$cid" echo alive 2>&1) || true
    expect_eq exec-after-unpause alive "$out"
  else
    fail unpause "podman unpause failed"
  fi

  # sleep as pid 1 ignores TERM; stop escalates to KILL after 1s.
  if podman_ stop -t 1 "$cid" >/dev/null 2>&1; then
    expect_eq stop "exited 137" "$(podman_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$cid" 2>&1)"
  else
    fail stop "podman stop failed"
  fi
  podman_ rm -f "$cid" >/dev/null 2>&1 || true
else
  fail run-detached "podman run -d failed: $cid"
fi

if cid=$(podman_ "${RUNX[@]}" -d "$IMG" sh -c 'trap "exit 7" TERM; while :; do sleep 0.2; done' 2>&1); then
  sleep 0.5
  if podman_ stop -t 20 "$cid" >/dev/null 2>&1; then
    expect_eq stop-term "exited 7" "$(podman_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$cid" 2>&1)"
  else
    fail stop-term "podman stop failed"
  fi
  podman_ rm -f "$cid" >/dev/null 2>&1 || true
else
  fail stop-term "podman run -d failed: $cid"
fi

finish
