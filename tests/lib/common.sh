# tests/lib/common.sh -- helpers for integration tests that run the real binaries.
# Source it from a test script:  . "$(dirname "$0")/../lib/common.sh"
#
# Why: a test that cannot fail reports a promise as kept. So the harness itself
# refuses the quiet ways a script can pass without testing anything:
#  - `finish` fails when no check ran at all;
#  - `stop_pid` reaps the process and returns its real status: a service that
#    already died (SIGSEGV, ASan exit 23) is reported with that status, never
#    as "exits cleanly"; one that ignores SIGTERM is killed and reported (124);
#  - `bail` is the only way out of a failed start: it counts a failure;
#  - every process started with start_bg is stopped (and reaped) at the end, and
#    one that crashed on the way (signal or sanitizer exit) fails the test even
#    when no check looked at it;
#  - a missing tool is `skip`ped, never passed: the script then exits 77, which
#    ctest reports as skipped (SKIP_RETURN_CODE, set in tests/CMakeLists.txt),
#    and `make test` fails on any skip (tests/lib/ctest_strict.sh).
set -u

TEST_PIDS=()
declare -A TEST_PID_NAME=()
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
  TEST_PID_NAME[$LAST_PID]=$name
  eval "PID_${name//-/_}=$LAST_PID"
}

# wait_http URL [SECONDS] [PID] : waits until URL answers (any HTTP status); fails at
# once if PID (default: the last process started) has exited, e.g. could not bind.
wait_http() {
  local url=$1 t=${2:-20} pid=${3-${LAST_PID:-}} i=0
  while (( i < t * 10 )); do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited while waiting for $url" >&2; return 1
    fi
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1; i=$((i + 1))
  done
  echo "timeout waiting for $url" >&2; return 1
}

# wait_healthy URL [SECONDS] [PID] : waits until URL answers 200; fails at once
# if PID (when given) has exited.
wait_healthy() {
  local url=$1 t=${2:-20} pid=${3:-} i=0
  while (( i < t * 10 )); do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited while waiting for 200 from $url" >&2; return 1
    fi
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ] && return 0
    sleep 0.1; i=$((i + 1))
  done
  echo "timeout waiting for 200 from $url" >&2; curl -s "$url" >&2; return 1
}

# wait_for SECONDS CMD... : polls CMD every 0.1 s until it succeeds (0) or
# SECONDS pass (1, and says what it waited for). For waits on a condition
# instead of sleeps.
wait_for() {
  local t=$1 i=0; shift
  while (( i < t * 10 )); do
    "$@" && return 0
    sleep 0.1; i=$((i + 1))
  done
  echo "# timeout after ${t}s waiting for: $*" >&2
  return 1
}

# exit_status_name STATUS : "0", "23 (sanitizer report)", "139 (SIGSEGV)".
exit_status_name() {
  local st=$1
  if [ "$st" = 23 ]; then echo "23 (sanitizer report)"
  elif [ "$st" = 124 ]; then echo "124 (did not exit after SIGTERM, killed)"
  elif [ "$st" = 127 ]; then echo "127 (not a child of this test, or already reaped)"
  elif (( st > 128 )); then echo "$st (SIG$(kill -l $((st - 128)) 2>/dev/null || echo ?))"
  else echo "$st"; fi
}

# crash_status STATUS : true when STATUS means a crash or a sanitizer report --
# SIGILL/SIGTRAP/SIGABRT/SIGBUS/SIGFPE/SIGSEGV, or ASan/UBSan's exitcode 23.
# (SIGKILL/SIGTERM/SIGINT are what tests send on purpose.)
crash_status() {
  case "$1" in 23|132|133|134|135|136|139) return 0 ;; *) return 1 ;; esac
}

# _forget_pid PID : drop a reaped process from the list cleanup stops.
_forget_pid() {
  local p keep=()
  for p in "${TEST_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  TEST_PIDS=("${keep[@]}")
}

# stop_pid PID [SECONDS] : SIGTERM, wait up to SECONDS (default $STOP_TIMEOUT_S or
# 60) for the exit, reap it, and return its real exit status (0 = clean exit;
# 23 = sanitizer report; 128+N = killed by signal N). A process that had already
# exited before SIGTERM returns the status it died with (a crash is never a
# clean exit). One that is still running after SECONDS is SIGKILLed: 124.
stop_pid() {
  local pid=$1 t=${2:-${STOP_TIMEOUT_S:-60}} rc=0 i=0 name
  name=${TEST_PID_NAME[$pid]:-$pid}
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    kill -CONT "$pid" 2>/dev/null   # a SIGSTOPped process must see the TERM too
    while kill -0 "$pid" 2>/dev/null && (( i < t * 10 )); do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      echo "# stop_pid: $name (pid $pid) still running ${t}s after SIGTERM: SIGKILL" >&2
      # what it was doing: busy (R) or waiting (S, and in which kernel call), and its last words
      echo "# stop_pid: $name $(grep -E '^State' "/proc/$pid/status" 2>/dev/null | tr -s '\t ' ' ')," \
        "wchan $(cat "/proc/$pid/wchan" 2>/dev/null), threads $(ls "/proc/$pid/task" 2>/dev/null | wc -l)" >&2
      [ -f "$TEST_TMP/$name.log" ] && tail -n 5 "$TEST_TMP/$name.log" | sed 's/^/#   /' >&2
      if command -v gdb >/dev/null; then   # where it is stuck, for the report
        timeout 60 gdb -p "$pid" -batch -ex 'thread apply all bt 30' 2>/dev/null | grep -E '^(#|Thread)' |
          head -n 60 | sed 's/^/#   /' >&2
      fi
      # LeakSanitizer's exit-time check (ASan builds) forks a tracer task of the same
      # program that suspends the process, scans its heap and lets it exit; when that
      # tracer dies, the process spins in sched_yield for ever (google/sanitizers#777):
      # state R, one thread, a child of the same name, after the program's own shutdown.
      # That is the sanitizer runtime, not this program: said loudly, not counted as a hang.
      local kids comm lsan=0
      comm=$(cat "/proc/$pid/comm" 2>/dev/null)
      kids=$(ps -o pid=,stat=,comm= --ppid "$pid" 2>/dev/null | tr '\n' ';')
      echo "# stop_pid: $name TracerPid $(awk '/^TracerPid/{print $2}' "/proc/$pid/status" 2>/dev/null)," \
        "children: ${kids:-none}" >&2
      if grep -q libasan "/proc/$pid/maps" 2>/dev/null && [ -n "$comm" ] && [[ "$kids" == *"$comm"* ]]; then lsan=1; fi
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      _forget_pid "$pid"
      if [ "$lsan" = 1 ]; then
        echo "# stop_pid: $name: stuck in LeakSanitizer's exit check (its tracer child: $kids), known" \
          "libsanitizer bug google/sanitizers#777; the program had shut down; not counted as a hang" >&2
        return 0
      fi
      return 124
    fi
    wait "$pid" 2>/dev/null || rc=$?
    [ "$rc" = 0 ] || echo "# stop_pid: $name (pid $pid) exit status $(exit_status_name "$rc")" >&2
  else
    wait "$pid" 2>/dev/null || rc=$?
    echo "# stop_pid: $name (pid $pid) had already exited before SIGTERM, status $(exit_status_name "$rc")" >&2
  fi
  _forget_pid "$pid"
  return "$rc"
}

# Stops everything still running (SIGTERM, then SIGKILL after 30 s), reaps it, and
# fails the test (CRASH_FAILED) when a process died of a crash signal or with the
# sanitizer exit code, and (SANITIZER_FAILED) when a log holds a sanitizer report.
# on_cleanup CMD : CMD runs first at cleanup (e.g. kill a process group of its own).
CLEANUP_HOOKS=()
on_cleanup() { CLEANUP_HOOKS+=("$1"); }
cleanup() {
  local pid st i name hook
  CRASH_FAILED=0
  for hook in "${CLEANUP_HOOKS[@]}"; do eval "$hook" || true; done
  CLEANUP_HOOKS=()
  for pid in "${TEST_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true   # safe under set -e
    kill -CONT "$pid" 2>/dev/null || true
  done
  for pid in "${TEST_PIDS[@]}"; do
    i=0
    while kill -0 "$pid" 2>/dev/null && (( i < 300 )); do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    st=0; wait "$pid" 2>/dev/null || st=$?
    if crash_status "$st"; then
      name=${TEST_PID_NAME[$pid]:-$pid}
      echo "FAIL: process $name (pid $pid) ended with status $(exit_status_name "$st")" >&2
      [ -f "$TEST_TMP/$name.log" ] && tail -n 30 "$TEST_TMP/$name.log" >&2
      CRASH_FAILED=1
    fi
  done
  TEST_PIDS=()
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

# post_home_batches URL FILE... : POSTs each JSON batch to URL/api/v1/events, a file named
# *-cabin.json as home "cabin" (X-HomeIQ-Home), any other as the default home; prints the
# total of the answers' "stored" (a failed POST counts 0, so the caller's check fails).
post_home_batches() {
  local url=$1 f n total=0; shift
  for f in "$@"; do
    local H=(); case $f in *-cabin.json) H=(-H 'X-HomeIQ-Home: cabin') ;; esac
    n=$(curl -s -XPOST "$url/api/v1/events" -H 'Content-Type: application/json' "${H[@]}" --data-binary "@$f" | jq '.stored // 0')
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# skip "what could not run, and why" : a check that cannot run here (a missing
# tool). Never a pass: the script ends with 77 (ctest: skipped) unless a check
# failed, and `make test` fails on any skip.
SKIPS=0
skip() {
  SKIPS=$((SKIPS + 1)); echo "ok - # SKIP $1"
}

# bail "what did not start" : a start (or other precondition) failed, so the
# remaining checks cannot run. Counts a failure, shows the tail of every log,
# and finishes.
bail() {
  FAILS=$((FAILS + 1)); echo "not ok - $1"
  local f
  for f in "$TEST_TMP"/*.log; do
    [ -f "$f" ] || continue
    echo "# --- tail of $(basename "$f")"; tail -n 20 "$f" | sed 's/^/#   /'
  done
  finish
}

# finish : print the summary and exit (call last): 1 on any failure (a check, a
# crash, a sanitizer report) or when no check ran at all, 77 when something
# was skipped, else 0.
finish() {
  SANITIZER_FAILED=0
  cleanup
  trap - EXIT
  [ "$SANITIZER_FAILED" = 1 ] && FAILS=$((FAILS + 1))
  [ "$CRASH_FAILED" = 1 ] && FAILS=$((FAILS + 1))
  echo "$PASSES passed, $FAILS failed, $SKIPS skipped"
  if [ "$FAILS" != 0 ]; then exit 1; fi
  if [ $((PASSES + SKIPS)) = 0 ]; then echo "FAIL: no check ran" >&2; exit 1; fi
  if [ "$SKIPS" != 0 ]; then echo "SKIPPED: $SKIPS check(s) could not run here (exit 77)" >&2; exit 77; fi
  exit 0
}

# A script that ends without `finish` (an early `exit`, set -e) still stops its
# processes; ending that way with status 0 is a failure (nothing was summed up).
_on_exit() {
  local rc=$?
  SANITIZER_FAILED=0
  cleanup
  if [ "$rc" = 0 ]; then echo "FAIL: the test script ended without calling finish" >&2; rc=1; fi
  if [ "$rc" = 77 ]; then rc=1; fi   # only finish may report a skip
  exit "$rc"
}
trap _on_exit EXIT
