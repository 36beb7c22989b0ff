#!/bin/sh
# Networking benchmarks for berthd, all inside a private network namespace (nothing touches the
# host's interfaces or nftables):
#   1. `docker run --rm busybox true` on the default bridge (berthd), vs a private dockerd when
#      one can start (else the reference figure 269 ms from issue 7); target <= 0.1x.
#   2. bulk TCP host -> container through a published port, vs a raw veth pair.
#   3. container -> container on one user network, vs a raw veth pair (target within 10%).
# The throughput parts are a quick look with busybox nc (not yet checked against a byte count
# on the receiving side); bench/netthroughput.sh (berth-network's example) is the careful one.
# Usage: bench/network.sh   (root; builds berthd/berth-shim in release into $CARGO_TARGET_DIR)
set -eu
T=${CARGO_TARGET_DIR:-target}
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p berth-daemon -p berth-shim -p berth-testutil --bins
BERTHD=$T/release/berthd
export BERTH_SHIM=$T/release/berth-shim
BB=$(command -v busybox)
N=${N:-20}
MB=${MB:-512}
W=$(mktemp -d /tmp/bnXXXXXX)
NS=$W/net; : > "$NS"
unshare --net="$NS" true
IN="nsenter --net=$NS --"
$IN ip link set lo up
cleanup() {
  [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null; sleep 0.5
  for p in $(pgrep -f "$W/x" || true); do kill -9 "$p" 2>/dev/null || true; done
  grep " $W" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$W"
}
trap cleanup EXIT
# Seed busybox into the data root with the test fixture.
"$T/release/berth-fixture" rootfs-tar "$W/rootfs.tar" >/dev/null
$IN "$BERTHD" -l debug --data-root "$W/d" --exec-root "$W/x" -H "unix://$W/s.sock" --pidfile "$W/pid" \
  --config-file "$W/none.json" >"$W/log" 2>&1 &
BPID=$!
export DOCKER_HOST=unix://$W/s.sock
for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker import -c 'CMD ["sh"]' "$W/rootfs.tar" busybox:latest >/dev/null
docker run --rm busybox true
echo "== run --rm busybox true (default bridge), $N runs"
hyperfine -N -w 3 -r "$N" --export-json "$W/run.json" "docker run --rm busybox true" >/dev/null
BERTH_MS=$(python3 -c "import json;print(round(json.load(open('$W/run.json'))['results'][0]['mean']*1000,1))")
DOCKER_MS=269
if [ "${DOCKERD:-1}" = 1 ] && command -v dockerd >/dev/null; then
  # A private dockerd in its own network namespace, with its default bridge and iptables there.
  DNS=$W/dnet; : > "$DNS"; unshare --net="$DNS" true
  nsenter --net="$DNS" ip link set lo up
  nsenter --net="$DNS" dockerd --data-root "$W/dd" --exec-root "$W/dx" -H "unix://$W/d.sock" \
    --pidfile "$W/d.pid" >"$W/dlog" 2>&1 &
  DPID=$!
  for _ in $(seq 100); do DOCKER_HOST=unix://$W/d.sock docker version >/dev/null 2>&1 && break; sleep 0.2; done
  if DOCKER_HOST=unix://$W/d.sock docker import -c 'CMD ["sh"]' "$W/rootfs.tar" busybox:latest >/dev/null 2>&1 \
     && DOCKER_HOST=unix://$W/d.sock docker run --rm busybox true; then
    DOCKER_HOST=unix://$W/d.sock hyperfine -N -w 3 -r "$N" --export-json "$W/drun.json" "docker run --rm busybox true" >/dev/null
    DOCKER_MS=$(python3 -c "import json;print(round(json.load(open('$W/drun.json'))['results'][0]['mean']*1000,1))")
    echo "private dockerd (bridge, own netns): ${DOCKER_MS} ms"
  else
    echo "private dockerd did not run a container; using the reference 269 ms (log: $W/dlog)"
  fi
  kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null || true
fi
echo "berthd: ${BERTH_MS} ms   docker: ${DOCKER_MS} ms   ratio: $(python3 -c "print(round($BERTH_MS/$DOCKER_MS,3))")x (target <= 0.1x)"
echo "== network setup per container (berthd debug log)"
grep -o 'network setup [0-9a-f]*: [0-9.]*[mµn]*s' "$W/log" | python3 -c "
import sys, statistics
v = []
for l in sys.stdin:
    t = l.split()[-1]
    unit = 1e-3 if t.endswith('µs') else 1e-6 if t.endswith('ns') else 1.0 if t.endswith('ms') else 1e3
    v.append(float(t.rstrip('smµn')) * unit)
print('network setup per container: median %.2f ms, max %.2f ms over %d starts (target <= 5 ms)' % (statistics.median(v), max(v), len(v)) if v else 'no timings in the log')
"

echo "== bulk TCP host -> container through a published port (${MB} MiB)"
docker run -d --name sink -p 9000:9000 busybox sh -c 'while true; do nc -l -p 9000 > /dev/null; done' >/dev/null
sleep 0.5
t0=$(date +%s.%N)
$IN sh -c "dd if=/dev/zero bs=1M count=$MB 2>/dev/null | $BB nc 127.0.0.1 9000"
t1=$(date +%s.%N)
PUB=$(python3 -c "print(round($MB*8/($t1-$t0)/1000,2))")
echo "published port (127.0.0.1): ${PUB} Gbit/s"

echo "== container -> container on one user network (${MB} MiB)"
docker network create benchnet >/dev/null
docker run -d --name rx --network benchnet busybox sh -c 'while true; do nc -l -p 9001 > /dev/null; done' >/dev/null
sleep 0.5
t0=$(date +%s.%N)
docker run --rm --network benchnet busybox sh -c "dd if=/dev/zero bs=1M count=$MB 2>/dev/null | nc rx 9001"
t1=$(date +%s.%N)
C2C=$(python3 -c "print(round($MB*8/($t1-$t0)/1000,2))")
echo "container -> container: ${C2C} Gbit/s"

echo "== raw veth pair between two namespaces (${MB} MiB)"
A=$W/a; B=$W/b; : > "$A"; : > "$B"
unshare --net="$A" true; unshare --net="$B" true
nsenter --net="$A" ip link add va type veth peer name vb0
nsenter --net="$A" ip link set vb0 netns "$B"
nsenter --net="$A" sh -c 'ip addr add 10.99.0.1/24 dev va; ip link set va up; ip link set lo up'
nsenter --net="$B" sh -c 'ip addr add 10.99.0.2/24 dev vb0; ip link set vb0 up; ip link set lo up'
nsenter --net="$B" "$BB" nc -l -p 9002 > /dev/null &
sleep 0.3
t0=$(date +%s.%N)
nsenter --net="$A" sh -c "dd if=/dev/zero bs=1M count=$MB 2>/dev/null | $BB nc 10.99.0.2 9002"
t1=$(date +%s.%N)
RAW=$(python3 -c "print(round($MB*8/($t1-$t0)/1000,2))")
echo "raw veth: ${RAW} Gbit/s"
echo "ratios: published/raw $(python3 -c "print(round($PUB/$RAW,2))")   c2c/raw $(python3 -c "print(round($C2C/$RAW,2))")"
docker rm -f sink rx >/dev/null
