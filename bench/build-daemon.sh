#!/bin/bash
# berthd's builder alone, through the docker CLI (classic builder protocol): the 4 x 64 MiB
# COPY + RUN Dockerfile cold, fully cached, and the part of a cached build that is only sending
# and unpacking the context (a Dockerfile that fails to parse). bench/build.sh compares with
# docker build; this one shows where berthd's time goes.
# usage: bench/build-daemon.sh [BINDIR (default target/release)]  (root; busybox rootfs tar from
# berth-fixture or the e2e tests' target tmp dir in ROOTFS_TAR)
set -euo pipefail
BIN=${1:-target/release}
ROOTFS_TAR=${ROOTFS_TAR:-target/tmp/berth-busybox-rootfs.tar}
W=$(mktemp -d /tmp/bbench.XXXXXX)
R=$W/root; C=$W/ctx; mkdir -p $R/cfg $C
echo '{}' > $R/cfg/config.json
trap 'kill $(cat $R/berthd.pid) 2>/dev/null; sleep 0.5; rm -rf $W' EXIT
for i in 1 2 3 4; do head -c 67108864 /dev/urandom > $C/f$i.bin; done
touch -d '1 minute ago' $C/*.bin
cat > $C/Dockerfile <<'DF'
FROM busybox
COPY f1.bin /data/f1.bin
COPY f2.bin /data/f2.bin
COPY f3.bin /data/f3.bin
COPY f4.bin /data/f4.bin
RUN cat /data/*.bin | wc -c > /size
DF
$BIN/berthd --data-root $R/d --exec-root $R/x -H unix://$R/s.sock --pidfile $R/pid \
  --config-file $R/none.json --bridge=none --iptables=false > $R/log 2>&1 &
echo $! > $R/berthd.pid
export DOCKER_HOST=unix://$R/s.sock DOCKER_BUILDKIT=0 DOCKER_CONFIG=$R/cfg
for i in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker import -c 'CMD ["sh"]' "$ROOTFS_TAR" busybox:latest >/dev/null
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
cold=$(t docker build -q -t bench:1 $C)
cached=$(t docker build -q -t bench:1 $C)
printf 'FROM busybox\nNOSUCHINSTRUCTION x\n' > $W/Dockerfile.bad
cp $W/Dockerfile.bad $C/Dockerfile.bad
ctxonly=$(t docker build -q -f $C/Dockerfile.bad $C)
echo "cold build:               ${cold} s"
echo "fully cached build:       ${cached} s"
echo "context send+unpack only: ${ctxonly} s"
echo "cached minus context:     $(echo "$cached - $ctxonly" | bc) s"
