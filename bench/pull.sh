#!/usr/bin/env bash
# Pull/push benchmark of issue 4: a 256 MiB image of four 64 MiB incompressible gzip layers in a
# private docker-registry (distribution 2.8) on 127.0.0.1. berth's client pushes it and pulls it
# into an empty store (downloaded, verified, unpacked into snapshots, recorded); then, when
# dockerd is installed, a private dockerd pulls the same image and pushes it to another repository.
# Root. Everything it starts is stopped, everything it creates removed, also on failure.
#
#   bench/pull.sh
# shellcheck source-path=SCRIPTDIR source=../tests/interop/lib.sh
source "$(dirname "$0")/../tests/interop/lib.sh"
need_root
need_cmd docker-registry docker-registry
make_workdir /var/tmp
RUN=$(mktemp -d /run/berth-bench.XXXXXX)
add_cleanup "remove_tree '$RUN'"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# $1: name, $2: variable to set to the host:port of a fresh, empty registry. (Not run in a
# command substitution: its cleanup must be registered in this shell.)
start_registry() {
  local name=$1 addr
  addr="127.0.0.1:$(free_port)"
  mkdir -p "$WORK/$name"
  cat >"$WORK/$name.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/$name
http:
  addr: $addr
log:
  level: error
YML
  docker-registry serve "$WORK/$name.yml" >"$WORK/$name.log" 2>&1 &
  add_cleanup "stop_pid $! 10"
  for ((i = 0; i < 100; i++)); do
    curl -sf "http://$addr/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  printf -v "$2" '%s' "$addr"
}
start_registry registry REG
# Docker pushes into an empty registry of its own, as berth's push did: no blob to skip or mount.
start_registry registry2 REG2

cd "$REPO_ROOT"
out=$(BERTH_BENCH_REGISTRY=$REG cargo test --release -q -p berth-distribution --test pull_perf -- --ignored --nocapture 2>&1) || {
  echo "$out" >&2
  die "berth benchmark failed"
}
berth_push=$(echo "$out" | awk '/^BENCH push/ {print $(NF-1)}')
berth_pull=$(echo "$out" | awk '/^BENCH pull/ {print $(NF-1)}')
printf '%-44s %8s s\n' "berth push 4 x 64 MiB (client, from store)" "$berth_push" "berth pull into an empty store, unpacked" "$berth_pull"

if ! command -v dockerd >/dev/null; then
  echo "dockerd not installed (apt-get install docker.io): no Docker comparison"
  trap - EXIT
  on_exit
  exit 0
fi
SOCK="$RUN/docker.sock"
EXEC_ROOT="$RUN/exec"
mkdir -p "$WORK/data" "$EXEC_ROOT" "$WORK/cli"
printf '{"deprecated-key-path": "%s"}\n' "$WORK/key.json" >"$WORK/daemon.json"
for d in /run/containerd /run/containerd/s /run/docker /run/docker/plugins; do
  [ -e "$d" ] || add_cleanup "rmdir '$d' 2>/dev/null || true"
done
export DOCKER_CONFIG="$WORK/cli" DOCKER_HOST="unix://$SOCK"
dockerd --data-root "$WORK/data" --exec-root "$EXEC_ROOT" --pidfile "$RUN/docker.pid" -H "unix://$SOCK" \
  --config-file "$WORK/daemon.json" --bridge=none --iptables=false --ip-masq=false --userland-proxy=false \
  --insecure-registry "$REG" --insecure-registry "$REG2" --log-level warn >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
add_cleanup "stop_pid $DOCKERD_PID 30; for p in \$(pids_mentioning '$EXEC_ROOT'); do stop_pid \$p 5; done"
for ((i = 0; i < 240; i++)); do
  timeout 5 docker version >/dev/null 2>&1 && break
  sleep 0.25
done
timeout 5 docker version >/dev/null 2>&1 || die "dockerd did not start (see $WORK/dockerd.log)"

t0=$EPOCHREALTIME
timeout 300 docker pull -q "$REG/bench/big:latest" >/dev/null || die "docker pull failed"
t1=$EPOCHREALTIME
timeout 60 docker tag "$REG/bench/big:latest" "$REG2/bench/big:latest"
t2=$EPOCHREALTIME
timeout 300 docker push -q "$REG2/bench/big:latest" >/dev/null || die "docker push failed"
t3=$EPOCHREALTIME
docker_pull=$(echo "$t1 - $t0" | bc -l)
docker_push=$(echo "$t3 - $t2" | bc -l)
printf '%-44s %8.3f s\n' "docker pull (same registry, same image)" "$docker_pull" "docker push (to an empty registry)" "$docker_push"
printf 'ratio berth/docker: pull %.2fx, push %.2fx\n' "$(echo "$berth_pull / $docker_pull" | bc -l)" "$(echo "$berth_push / $docker_push" | bc -l)"
trap - EXIT
on_exit
