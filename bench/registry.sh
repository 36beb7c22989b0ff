#!/usr/bin/env bash
# berth-registry against Debian's docker-registry (distribution 2.8) on the same machine, both on
# 127.0.0.1 with their own empty storage:
#   1. `docker pull` (a private dockerd) of a 256 MiB image of four 64 MiB incompressible gzip
#      layers, RUNS runs from each registry (image removed between runs), median and ratio;
#   2. raw blob GET throughput: CLIENTS parallel curl clients each fetching all four layers,
#      RUNS rounds, median MiB/s and ratio;
#   3. each server's peak RSS while serving (2), sampled from /proc every 50 ms, and its VmHWM.
# Targets (issue 9): pull ≥ 1.0× distribution's speed, GET throughput ≥ 2×, RSS ≤ distribution's.
# Root. Everything it starts is stopped (by pid), everything it creates removed, also on failure.
#
#   bench/registry.sh            # RUNS=3 CLIENTS=8
# Environment: BERTH_REGISTRY (default: $CARGO_TARGET_DIR/release/berth-registry, built if missing).
# shellcheck source-path=SCRIPTDIR source=../tests/interop/lib.sh
source "$(dirname "$0")/../tests/interop/lib.sh"
need_root
need_cmd docker-registry docker-registry
need_cmd dockerd docker.io
need_cmd docker docker.io
need_cmd curl curl
need_cmd python3 python3
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-8}
make_workdir /var/tmp
RUN=$(mktemp -d /run/berth-bench.XXXXXX)
add_cleanup "remove_tree '$RUN'"

BERTH_REGISTRY=${BERTH_REGISTRY:-$TARGET_DIR/release/berth-registry}
if [ ! -x "$BERTH_REGISTRY" ]; then
  (cd "$REPO_ROOT" && cargo build --release -q -p berth-distribution --bin berth-registry) ||
    die "cargo build berth-registry failed"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  local i
  for ((i = 0; i < 100; i++)); do
    curl -sf "http://$1/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "registry at $1 did not answer"
}

# distribution 2.8
DIST=127.0.0.1:$(free_port)
mkdir -p "$WORK/dist"
cat >"$WORK/dist.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/dist
http:
  addr: $DIST
log:
  level: error
  accesslog:
    disabled: true
YML
docker-registry serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
DIST_PID=$!
add_cleanup "stop_pid $DIST_PID 10"
wait_http "$DIST"

# berth-registry, request logs off as distribution's are (a config file).
BERTH=127.0.0.1:$(free_port)
printf 'log_requests = false\n' >"$WORK/berth.toml"
"$BERTH_REGISTRY" serve --config "$WORK/berth.toml" --addr "$BERTH" --root "$WORK/berth" >"$WORK/berth.log" 2>&1 &
BERTH_PID=$!
add_cleanup "stop_pid $BERTH_PID 10"
wait_http "$BERTH"

# The image: four 64 MiB layers of random bytes (gzip cannot shrink them), a config naming their
# diff ids, a Docker schema2 manifest; pushed to both registries with curl.
IMG="$WORK/img"
mkdir -p "$IMG"
layers_json=""
diff_ids=""
for i in 1 2 3 4; do
  mkdir -p "$IMG/l$i"
  head -c $((64 << 20)) /dev/urandom >"$IMG/l$i/data$i"
  tar -C "$IMG/l$i" -cf "$IMG/l$i.tar" "data$i"
  gzip -1 -c "$IMG/l$i.tar" >"$IMG/l$i.tgz"
  diff_ids+="${diff_ids:+,}\"sha256:$(sha256sum "$IMG/l$i.tar" | cut -d' ' -f1)\""
  rm -rf "$IMG/l$i" "$IMG/l$i.tar"
  layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":$(stat -c %s "$IMG/l$i.tgz"),\"digest\":\"sha256:$(sha256sum "$IMG/l$i.tgz" | cut -d' ' -f1)\"}"
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/data1"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$IMG/config.json"
cfg_digest="sha256:$(sha256sum "$IMG/config.json" | cut -d' ' -f1)"
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%s,"digest":"%s"},"layers":[%s]}' \
  "$(stat -c %s "$IMG/config.json")" "$cfg_digest" "$layers_json" >"$IMG/manifest.json"

push_blob() { # $1 host, $2 file
  local d loc
  d="sha256:$(sha256sum "$2" | cut -d' ' -f1)"
  loc=$(curl -sSf -X POST -D - -o /dev/null "http://$1/v2/bench/big/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location" {print $2}')
  [ -n "$loc" ] || die "no upload session at $1"
  case $loc in http*) ;; *) loc="http://$1$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
  curl -sSf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" "$loc" -o /dev/null ||
    die "push $2 to $1 failed"
}
for reg in "$DIST" "$BERTH"; do
  for f in "$IMG"/l?.tgz "$IMG/config.json"; do push_blob "$reg" "$f"; done
  curl -sSf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
    --data-binary "@$IMG/manifest.json" "http://$reg/v2/bench/big/manifests/latest" -o /dev/null ||
    die "push manifest to $reg failed"
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# 1. docker pull
SOCK="$RUN/docker.sock"
mkdir -p "$WORK/data" "$RUN/exec" "$WORK/cli"
printf '{"deprecated-key-path": "%s"}\n' "$WORK/key.json" >"$WORK/daemon.json"
for d in /run/containerd /run/containerd/s /run/docker /run/docker/plugins; do
  [ -e "$d" ] || add_cleanup "rmdir '$d' 2>/dev/null || true"
done
export DOCKER_CONFIG="$WORK/cli" DOCKER_HOST="unix://$SOCK"
dockerd --data-root "$WORK/data" --exec-root "$RUN/exec" --pidfile "$RUN/docker.pid" -H "unix://$SOCK" \
  --config-file "$WORK/daemon.json" --bridge=none --iptables=false --ip-masq=false --userland-proxy=false \
  --log-level warn >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
add_cleanup "stop_pid $DOCKERD_PID 30; for p in \$(pids_mentioning '$RUN/exec'); do stop_pid \$p 5; done; unmount_below '$WORK/data'"
for ((i = 0; i < 240; i++)); do
  timeout 5 docker version >/dev/null 2>&1 && break
  sleep 0.25
done
timeout 5 docker version >/dev/null 2>&1 || die "dockerd did not start (see $WORK/dockerd.log)"

# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
declare -A PULL PULLCPU
for pair in "$DIST:$DIST_PID" "$BERTH:$BERTH_PID"; do
  reg=${pair%:*}
  pid=${pair##*:}
  times=()
  c0=$(cpu_s "$pid")
  for ((r = 0; r < RUNS; r++)); do
    timeout 120 docker rmi -f "$reg/bench/big:latest" >/dev/null 2>&1 || true
    sync
    t0=$EPOCHREALTIME
    timeout 300 docker pull -q "$reg/bench/big:latest" >/dev/null || die "docker pull from $reg failed"
    t1=$EPOCHREALTIME
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  PULLCPU[$reg]=$(echo "($(cpu_s "$pid") - $c0) / $RUNS" | bc -l)
  timeout 120 docker rmi -f "$reg/bench/big:latest" >/dev/null 2>&1 || true
  PULL[$reg]=$(printf '%s\n' "${times[@]}" | median)
  echo "docker pull from $reg: ${times[*]} s" >&2
done

# 2 + 3. CLIENTS parallel GETs of all four layers, RSS sampled meanwhile.
mapfile -t DIGESTS < <(for f in "$IMG"/l?.tgz; do echo "sha256:$(sha256sum "$f" | cut -d' ' -f1)"; done)
TOTAL=$(($(cat "$IMG"/l?.tgz | wc -c) * CLIENTS))
get_round() { # $1 host; prints seconds
  local t0 t1 c pids=()
  t0=$EPOCHREALTIME
  for ((c = 0; c < CLIENTS; c++)); do
    (for d in "${DIGESTS[@]}"; do curl -sSf -o /dev/null "http://$1/v2/bench/big/blobs/$d" || exit 1; done) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || return 1; done
  t1=$EPOCHREALTIME
  echo "$t1 - $t0" | bc -l
}
rss_sampler() { # $1 pid, $2 out file: max VmRSS kB until killed
  local max=0 v
  while kill -0 "$1" 2>/dev/null; do
    v=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$max" ] && max=$v && echo "$max" >"$2"
    sleep 0.05
  done
}
declare -A GET RSS HWM ONE
for pair in "$DIST:$DIST_PID" "$BERTH:$BERTH_PID"; do
  reg=${pair%:*}
  pid=${pair##*:}
  echo 0 >"$WORK/rss.$pid"
  rss_sampler "$pid" "$WORK/rss.$pid" &
  sampler=$!
  times=()
  get_round "$reg" >/dev/null || die "GET from $reg failed" # the same warm page cache for both
  # One client, the four layers one after the other: what a single download costs.
  t0=$EPOCHREALTIME
  for d in "${DIGESTS[@]}"; do curl -sSf -o /dev/null "http://$reg/v2/bench/big/blobs/$d" || die "GET from $reg failed"; done
  t1=$EPOCHREALTIME
  ONE[$reg]=$(echo "$TOTAL / $CLIENTS / 1048576 / ($t1 - $t0)" | bc -l)
  for ((r = 0; r < RUNS; r++)); do
    s=$(get_round "$reg") || die "GET from $reg failed"
    times+=("$s")
  done
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null || true
  secs=$(printf '%s\n' "${times[@]}" | median)
  GET[$reg]=$(echo "$TOTAL / 1048576 / $secs" | bc -l)
  RSS[$reg]=$(cat "$WORK/rss.$pid")
  HWM[$reg]=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  echo "GET x$CLIENTS from $reg: ${times[*]} s" >&2
done

printf '\n%-40s %16s %16s %8s\n' "" "distribution 2.8" "berth-registry" "ratio"
printf '%-40s %14.3f s %14.3f s %7.2fx\n' "docker pull 256 MiB (median of $RUNS)" \
  "${PULL[$DIST]}" "${PULL[$BERTH]}" "$(echo "${PULL[$DIST]} / ${PULL[$BERTH]}" | bc -l)"
printf '%-40s %14.3f s %14.3f s %7.2fx\n' "server CPU per docker pull (user+sys)" \
  "${PULLCPU[$DIST]}" "${PULLCPU[$BERTH]}" "$(echo "${PULLCPU[$DIST]} / ${PULLCPU[$BERTH]}" | bc -l)"
printf '%-40s %10.0f MiB/s %10.0f MiB/s %7.2fx\n' "blob GET, 1 client, 4 layers in turn" \
  "${ONE[$DIST]}" "${ONE[$BERTH]}" "$(echo "${ONE[$BERTH]} / ${ONE[$DIST]}" | bc -l)"
printf '%-40s %10.0f MiB/s %10.0f MiB/s %7.2fx\n' "blob GET, $CLIENTS clients (median of $RUNS)" \
  "${GET[$DIST]}" "${GET[$BERTH]}" "$(echo "${GET[$BERTH]} / ${GET[$DIST]}" | bc -l)"
printf '%-40s %13s kB %13s kB %7.2fx\n' "peak RSS during the GET load" \
  "${RSS[$DIST]}" "${RSS[$BERTH]}" "$(echo "${RSS[$BERTH]} / ${RSS[$DIST]}" | bc -l)"
printf '%-40s %13s kB %13s kB %7.2fx\n' "VmHWM (whole run, incl. pushes)" \
  "${HWM[$DIST]}" "${HWM[$BERTH]}" "$(echo "${HWM[$BERTH]} / ${HWM[$DIST]}" | bc -l)"
echo "ratios: pull and CPU = distribution / berth (target >= 1.0), GET = berth / distribution" \
  "(target >= 2.0), RSS = berth / distribution (target <= 1.0); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
trap - EXIT
on_exit
