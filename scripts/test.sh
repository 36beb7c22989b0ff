#!/usr/bin/env bash
# The one command that tests berth (run as root, from anywhere in the repo):
#
#   scripts/test.sh [--no-interop | --interop-only]
#
# 1. cargo fmt --check and cargo clippy (warnings are errors)
# 2. cargo build --release --workspace --bins
# 3. cargo nextest run --workspace --profile ci (cargo test when nextest is not installed)
# 4. tests/interop/*.sh: dockerd, podman and containerd driving BERTH_RUNTIME
#    (default: $CARGO_TARGET_DIR/release/berth-runtime, i.e. target/release/berth-runtime)
#
# Every step is time-bounded. The last line is "N passed, M failed": N and M add up the tests the
# test runner ran, the interop checks, and each step that failed on its own (a build error, a
# timeout); the exit status is non-zero when M is.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT" || exit 1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
export BERTH_RUNTIME=${BERTH_RUNTIME:-$CARGO_TARGET_DIR/release/berth-runtime}
export BERTH_FIXTURE=${BERTH_FIXTURE:-$CARGO_TARGET_DIR/release/berth-fixture}
# Seconds; generous for a cold build on 2 cores, small enough to fit CI's 90 minutes in total.
LINT_TIMEOUT=${LINT_TIMEOUT:-900}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
TEST_TIMEOUT=${TEST_TIMEOUT:-1200}
INTEROP_TIMEOUT_EACH=${INTEROP_TIMEOUT_EACH:-600}

run_lint=1 run_build=1 run_tests=1 run_interop=1
case "${1:-}" in
  "") ;;
  --no-interop) run_interop=0 ;;
  --interop-only) run_lint=0 run_tests=0 ;;
  *)
    echo "usage: scripts/test.sh [--no-interop | --interop-only]" >&2
    exit 2
    ;;
esac

PASSED=0
FAILED=0
FAILURES=()
LOGDIR=$(mktemp -d /tmp/berth-test.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT

step() {
  printf '\n=== %s\n' "$*"
}

step_ok() {
  PASSED=$((PASSED + 1))
}

step_failed() {
  FAILED=$((FAILED + 1))
  FAILURES+=("$1")
  echo "FAIL $1"
}

# Sums the leading numbers of the lines on stdin ("3 passed" lines from a runner's summary).
sum_first() {
  awk '{ s += $1 } END { print s + 0 }'
}

# Runs "$@" with a time limit; a timeout is reported as such. TERM first, and KILL only 90s later,
# so an interop script's trap has time to stop its daemons and unmount.
bounded() {
  local limit=$1 rc
  shift
  timeout -k 90 "$limit" "$@"
  rc=$?
  [ "$rc" -eq 124 ] && echo "timed out after ${limit}s: $*"
  return "$rc"
}

if [ "$run_lint" = 1 ]; then
  step "cargo fmt --check"
  if bounded 120 cargo fmt --all -- --check; then step_ok; else step_failed "cargo fmt --check (run cargo fmt)"; fi

  step "cargo clippy --workspace --all-targets -- -D warnings"
  if bounded "$LINT_TIMEOUT" cargo clippy --workspace --all-targets -- -D warnings; then
    step_ok
  else
    step_failed "cargo clippy"
  fi
fi

if [ "$run_build" = 1 ]; then
  step "cargo build --release --workspace --bins"
  if bounded "$BUILD_TIMEOUT" cargo build --release --workspace --bins; then
    step_ok
  else
    step_failed "cargo build --release"
    # Nothing below can run without the binaries.
    run_tests=0 run_interop=0
  fi
fi

if [ "$run_tests" = 1 ]; then
  log="$LOGDIR/tests.log"
  if cargo nextest --version >/dev/null 2>&1; then
    profile=()
    grep -qs '^\[profile\.ci\]' .config/nextest.toml && profile=(--profile ci)
    step "cargo nextest run --workspace ${profile[*]}"
    bounded "$TEST_TIMEOUT" cargo nextest run --workspace "${profile[@]}" --no-tests=warn 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # nextest's summary: "N tests run: A passed, B failed, C timed out, D skipped" (parts optional).
    summary=$(grep -E '^ *Summary ' "$log" | tail -n 1)
    p=$(grep -oE '[0-9]+ passed' <<<"$summary" | sum_first)
    f=$(grep -oE '[0-9]+ (failed|timed out)' <<<"$summary" | sum_first)
  else
    step "cargo test --workspace (cargo-nextest is not installed)"
    bounded "$TEST_TIMEOUT" cargo test --workspace 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # One "test result: ok. A passed; B failed; ..." line per test binary.
    p=$(grep -E '^test result:' "$log" | grep -oE '[0-9]+ passed' | sum_first)
    f=$(grep -E '^test result:' "$log" | grep -oE '[0-9]+ failed' | sum_first)
  fi
  p=${p:-0} f=${f:-0}
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  [ "$f" -gt 0 ] && FAILURES+=("$f test(s) in cargo's test run")
  # A failed exit with no failed test counted: compile error, timeout, crash of the runner.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    step_failed "cargo test run exited $rc"
  fi
fi

if [ "$run_interop" = 1 ]; then
  for script in tests/interop/*.sh; do
    [ "$(basename "$script")" = lib.sh ] && continue
    name=$(basename "$script" .sh)
    log="$LOGDIR/interop-$name.log"
    step "interop $name (BERTH_RUNTIME=$BERTH_RUNTIME)"
    bounded "$INTEROP_TIMEOUT_EACH" bash "$script" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    while IFS= read -r line; do FAILURES+=("interop $name: ${line#FAIL }"); done < <(grep '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      step_failed "interop $name exited $rc"
    fi
  done
fi

echo
if [ "${#FAILURES[@]}" -gt 0 ]; then
  echo "failures:"
  printf '  %s\n' "${FAILURES[@]}"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
