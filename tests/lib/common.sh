# tests/lib/common.sh -- helpers for integration tests that run the real binaries.
# Source it from a test script:  . "$(dirname "$0")/../lib/common.sh"
# Every process started with start_bg is killed (and waited for) on exit.
set -u

TEST_PIDS=()
TEST_TMP=$(mktemp -d /tmp/homeiq-test.XXXXXX)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# A TCP port on 127.0.0.1 that nothing listens on right now. Ports come from below the
# kernel's ephemeral range (so an outgoing connection cannot hold one), and a port is
# never handed out twice in one test (recorded in $TEST_TMP/.ports).
free_port() {
  local p
  while :; do
    p=$(( 10000 + RANDOM % 22000 ))
    grep -qx "$p" "$TEST_TMP/.ports" 2>/dev/null && continue
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p" >>"$TEST_TMP/.ports"; echo "$p"; return; fi
  done
}

# start_bg NAME CMD... : runs CMD in the background, stderr+stdout to $TEST_TMP/NAME.log,
# sets LAST_PID.
start_bg() {
  local name=$1; shift
  "$@" >"$TEST_TMP/$name.log" 2>&1 &
  LAST_PID=$!
  TEST_PIDS+=("$LAST_PID")
  eval "PID_${name//-/_}=$LAST_PID"
}

# wait_http URL [SECONDS] [PID] : waits until URL answers (any HTTP status); fails at
# once if PID (default: the last process started) has exited, e.g. could not bind.
wait_http() {
  local url=$1 t=${2:-20} pid=${3:-${LAST_PID:-}} i=0
  while (( i < t * 10 )); do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited while waiting for $url" >&2; return 1
    fi
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1; i=$((i + 1))
  done
  echo "timeout waiting for $url" >&2; return 1
}

# wait_healthy URL [SECONDS] : waits until URL answers 200.
wait_healthy() {
  local url=$1 t=${2:-20} i=0
  while (( i < t * 10 )); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ] && return 0
    sleep 0.1; i=$((i + 1))
  done
  echo "timeout waiting for 200 from $url" >&2; curl -s "$url" >&2; return 1
}

# stop_pid PID : SIGTERM, wait; returns the process' exit status (23 = leak/ASan report).
stop_pid() {
  local pid=$1 rc=0
  kill -TERM "$pid" 2>/dev/null || return 0
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

# Stops everything still running, checks sanitizer reports in the logs.
cleanup() {
  local pid
  for pid in "${TEST_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done   # safe under set -e
  for pid in "${TEST_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TEST_TMP"/*.log 2>/dev/null; then
    echo "FAIL: sanitizer report in the logs above" >&2
    grep -h -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TEST_TMP"/*.log >&2
    SANITIZER_FAILED=1
  fi
  if [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "$TEST_TMP"; fi
}

FAILS=0; PASSES=0
check() { # check "description" CONDITION-COMMAND...
  local desc=$1; shift
  if "$@"; then PASSES=$((PASSES + 1)); echo "ok - $desc"
  else FAILS=$((FAILS + 1)); echo "not ok - $desc"; fi
}
check_eq() { # check_eq "description" EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then PASSES=$((PASSES + 1)); echo "ok - $1"
  else FAILS=$((FAILS + 1)); echo "not ok - $1: expected [$2], got [$3]"; fi
}

# finish : print the summary and exit non-zero on any failure (call last).
finish() {
  SANITIZER_FAILED=0
  cleanup
  trap - EXIT
  [ "$SANITIZER_FAILED" = 1 ] && FAILS=$((FAILS + 1))
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" = 0 ]
  exit $?
}
trap cleanup EXIT
