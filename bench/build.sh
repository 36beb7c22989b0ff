#!/usr/bin/env bash
# Build benchmark of issue 8: `FROM busybox` + COPY of 4 x 64 MiB incompressible files + a RUN
# that reads them all, built cold (a fresh data root: no cache, no earlier layers) and fully
# cached (the same build again), by `berth build` against berthd and by `docker build` (classic
# builder, DOCKER_BUILDKIT=0) against a private dockerd; both daemons get the same busybox tar
# and build with --network none. Prints each run, the medians and the ratios against the targets
# (cold <= 0.5 x Docker's, fully cached <= 0.2 s). Root. Everything it starts is stopped by pid,
# everything it creates removed, also on failure or ^C.
#
#   bench/build.sh [RUNS]        (default 3)
# Env: BERTHD, BERTH_SHIM, BERTH, BERTH_FIXTURE (default: $CARGO_TARGET_DIR/release/...),
#      DOCKER (default /usr/local/bin/docker), DOCKERD (default dockerd on PATH; DOCKERD= skips
#      Docker), BUILD_TIMEOUT (seconds for one build, default 600)
# shellcheck source-path=SCRIPTDIR source=../tests/interop/lib.sh
source "$(dirname "$0")/../tests/interop/lib.sh"
need_root
RUNS=${1:-3}
if ! [[ "$RUNS" =~ ^[0-9]+$ ]] || [ "$RUNS" -lt 1 ]; then die "RUNS must be a positive integer, got '$RUNS'"; fi
BERTHD=${BERTHD:-$TARGET_DIR/release/berthd}
BERTH_SHIM=${BERTH_SHIM:-$TARGET_DIR/release/berth-shim}
BERTH=${BERTH:-$TARGET_DIR/release/berth}
DOCKER=${DOCKER:-$([ -x /usr/local/bin/docker ] && echo /usr/local/bin/docker || command -v docker || true)}
DOCKERD=${DOCKERD-$(command -v dockerd || true)}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-600}
for b in "$BERTHD" "$BERTH_SHIM" "$BERTH" "$BERTH_FIXTURE"; do
  [ -x "$b" ] || die "$b missing: cargo build --release -p berth-daemon -p berth-shim -p berth-cli -p berth-testutil"
done
if [ -z "$DOCKER" ] || ! [ -x "$DOCKER" ]; then die "docker CLI not found: install it or set DOCKER"; fi
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (EPOCHREALTIME)"
export BERTH_SHIM DOCKER_BUILDKIT=0

# The context is 256 MiB: on disk, not in /tmp's tmpfs if there is one. Sockets stay short.
make_workdir /var/tmp
RUN=$(mktemp -d /tmp/bbb.XXXXXX)
add_cleanup "remove_tree '$RUN'"
mkdir -p "$WORK/ctx/data" "$WORK/cli"
echo '{}' >"$WORK/cli/config.json"
echo '{}' >"$WORK/none.json"
export DOCKER_CONFIG="$WORK/cli"
for i in 1 2 3 4; do
  head -c $((64 << 20)) /dev/urandom >"$WORK/ctx/data/blob$i"
done
cat >"$WORK/ctx/Dockerfile" <<'EOF'
FROM busybox
COPY data /data
RUN cat /data/* | wc -c
EOF
"$BERTH_FIXTURE" rootfs-tar "$WORK/busybox.tar" >/dev/null || die "berth-fixture rootfs-tar failed"

# $1 socket, $2 name, $3 pid: waits until the daemon answers /_ping.
wait_socket() {
  local i
  for ((i = 0; i < 400; i++)); do
    curl -sf --unix-socket "$1" http://d/_ping >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || die "$2 exited during start"
    sleep 0.05
  done
  die "$2 did not answer on $1"
}

BERTHD_PID=
start_berthd() {
  remove_tree "$RUN/bd"
  "$BERTHD" --data-root "$RUN/bd/data" --exec-root "$RUN/bd/x" -H "unix://$RUN/b.sock" \
    --pidfile "$RUN/berthd.pid" --config-file "$WORK/none.json" --log-level warn --bridge=none --iptables=false \
    >>"$WORK/berthd.log" 2>&1 &
  BERTHD_PID=$!
  add_cleanup "stop_pid $BERTHD_PID 20"
  wait_socket "$RUN/b.sock" berthd "$BERTHD_PID"
  DOCKER_HOST="unix://$RUN/b.sock" t "$DOCKER" import --change 'CMD ["sh"]' "$WORK/busybox.tar" busybox:latest \
    >/dev/null || die "import busybox into berthd failed"
}
stop_berthd() {
  stop_pid "$BERTHD_PID" 20
  for p in $(pids_mentioning "$RUN/bd/x"); do stop_pid "$p" 5; done
}

DOCKERD_PID=
start_dockerd() {
  remove_tree "$WORK/dd"
  mkdir -p "$WORK/dd"
  "$DOCKERD" --data-root "$WORK/dd/data" --exec-root "$RUN/dx" -H "unix://$RUN/d.sock" \
    --pidfile "$RUN/dockerd.pid" --config-file "$WORK/none.json" --bridge=none --iptables=false \
    --ip-masq=false --log-level warn >>"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  add_cleanup "stop_pid $DOCKERD_PID 30"
  wait_socket "$RUN/d.sock" dockerd "$DOCKERD_PID"
  DOCKER_HOST="unix://$RUN/d.sock" t "$DOCKER" import --change 'CMD ["sh"]' "$WORK/busybox.tar" busybox:latest \
    >/dev/null || die "import busybox into dockerd failed"
}
stop_dockerd() {
  stop_pid "$DOCKERD_PID" 30
  for p in $(pids_mentioning "$RUN/dx"); do stop_pid "$p" 5; done
  remove_tree "$RUN/dx"
}

# Times one build: $1 label, then the command. Prints seconds; the build's output goes to a log.
time_build() {
  local label=$1 t0 t1
  shift
  sync
  t0=$EPOCHREALTIME
  timeout -k 5 "$BUILD_TIMEOUT" "$@" >>"$WORK/build-$label.log" 2>&1 ||
    die "$label build failed: $(tail -5 "$WORK/build-$label.log")"
  t1=$EPOCHREALTIME
  echo "$t1 - $t0" | bc -l
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

BC=() BW=() DC=() DW=()
for ((r = 1; r <= RUNS; r++)); do
  start_berthd
  v=$(time_build berth-cold "$BERTH" -H "unix://$RUN/b.sock" build --network none -t bench:build "$WORK/ctx") ||
    exit 1
  BC+=("$v")
  v=$(time_build berth-cached "$BERTH" -H "unix://$RUN/b.sock" build --network none -t bench:build "$WORK/ctx") ||
    exit 1
  BW+=("$v")
  [ "$(grep -c "Using cache" "$WORK/build-berth-cached.log")" -ge "$((2 * r))" ] ||
    die "berth's second build did not use the cache for COPY and RUN (see $WORK/build-berth-cached.log)"
  stop_berthd
  printf 'run %d  berth build   cold %7.3f s   cached %7.3f s\n' "$r" "${BC[-1]}" "${BW[-1]}"
  if [ -n "$DOCKERD" ]; then
    start_dockerd
    v=$(DOCKER_HOST="unix://$RUN/d.sock" time_build docker-cold "$DOCKER" build --network none -t bench:build "$WORK/ctx") ||
      exit 1
    DC+=("$v")
    v=$(DOCKER_HOST="unix://$RUN/d.sock" time_build docker-cached "$DOCKER" build --network none -t bench:build "$WORK/ctx") ||
      exit 1
    DW+=("$v")
    stop_dockerd
    printf 'run %d  docker build  cold %7.3f s   cached %7.3f s\n' "$r" "${DC[-1]}" "${DW[-1]}"
  fi
done

bc_m=$(median "${BC[@]}")
bw_m=$(median "${BW[@]}")
echo
printf '%-40s %9s %9s\n' "4 x 64 MiB COPY + RUN, median of $RUNS" cold cached
printf '%-40s %8.3fs %8.3fs\n' "berth build (berthd)" "$bc_m" "$bw_m"
if [ -n "$DOCKERD" ]; then
  dc_m=$(median "${DC[@]}")
  dw_m=$(median "${DW[@]}")
  printf '%-40s %8.3fs %8.3fs\n' "docker build (dockerd $("$DOCKERD" --version | awk '{ print $3 }' | tr -d ,), classic)" "$dc_m" "$dw_m"
  printf 'ratio berth/docker: cold %.2fx (target <= 0.50x), cached %.2fx\n' \
    "$(echo "$bc_m / $dc_m" | bc -l)" "$(echo "$bw_m / $dw_m" | bc -l)"
else
  echo "dockerd not installed (apt-get install docker.io): no Docker comparison"
fi
printf 'cached build %.3f s (target <= 0.200 s): %s\n' "$bw_m" \
  "$([ "$(echo "$bw_m <= 0.2" | bc -l)" = 1 ] && echo met || echo MISSED)"
trap - EXIT
on_exit
