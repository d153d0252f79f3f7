#!/usr/bin/env bash
# tests/lib/test_harness.sh -- the test harness (common.sh, ctest_strict.sh)
# must fail when it should.
#
# Why: every integration test trusts common.sh to turn a crash, a failed start,
# an empty run or a missing tool into a failure (or a visible skip). Each case
# below runs a tiny script on the real harness, in its own process, and checks
# its exit status and summary: no check -> 1; a service that died of SIGSEGV
# before stop_pid -> stop_pid returns 139; a process that ignores SIGTERM ->
# 124; `bail` -> 1; a crash nobody checked -> 1 at cleanup; a skip -> 77 (and
# ctest_strict.sh fails the run on it). This script itself uses plain bash
# checks, not common.sh, so a broken harness cannot pass it.
# Usage: test_harness.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/homeiq-harness.XXXXXX)
trap 'rm -rf "$T"' EXIT
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
notok() { FAIL=$((FAIL + 1)); echo "not ok - $1"; }

# run_case NAME WANT_RC WANT_GREP <<SCRIPT : runs SCRIPT (after sourcing
# common.sh) and checks its exit status and that its output matches WANT_GREP.
run_case() {
  local name=$1 want=$2 pat=$3 rc
  { echo ". '$HERE/common.sh'"; cat; } >"$T/$name.sh"
  STOP_TIMEOUT_S=2 bash "$T/$name.sh" >"$T/$name.out" 2>&1
  rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pat" "$T/$name.out"; then ok "$name: exit $rc"
  else notok "$name: want exit $want and /$pat/, got exit $rc:"; sed 's/^/#   /' "$T/$name.out"; fi
}

run_case no_check_ran 1 'no check ran' <<'S'
finish
S

run_case one_check_passes 0 '^1 passed, 0 failed, 0 skipped' <<'S'
check "true is true" true
finish
S

run_case a_failed_check 1 '^0 passed, 1 failed' <<'S'
check "false is true" false
finish
S

run_case stop_pid_reports_sigterm_death 1 'exit status 143 \(SIGTERM\)' <<'S'
start_bg svc sleep 100
check "sleep (no SIGTERM handler) exits cleanly" stop_pid "$LAST_PID"
finish
S

run_case stop_pid_handler_exit_0 0 '^1 passed, 0 failed' <<'S'
start_bg svc bash -c 'trap "exit 0" TERM; while :; do sleep 0.05; done'
sleep 0.3
check "a service with a SIGTERM handler exits cleanly" stop_pid "$LAST_PID"
finish
S

run_case stop_pid_after_sigsegv 1 'had already exited before SIGTERM, status 139 \(SIGSEGV\)' <<'S'
start_bg svc bash -c 'trap "exit 0" TERM; while :; do sleep 0.05; done'
sleep 0.3
kill -SEGV "$LAST_PID"; sleep 0.3
stop_pid "$LAST_PID"; rc=$?
check_eq "crashed service: stop_pid returns its status" 0 "$rc"
finish
S

run_case stop_pid_returns_139 0 '^1 passed' <<'S'
start_bg svc bash -c 'trap "exit 0" TERM; while :; do sleep 0.05; done'
sleep 0.3
kill -SEGV "$LAST_PID"; sleep 0.3
stop_pid "$LAST_PID"; rc=$?
check_eq "stop_pid returns 139 for a SIGSEGV" 139 "$rc"
finish
S

run_case stop_pid_sanitizer_exit 1 'exit status 23 \(sanitizer report\)' <<'S'
start_bg svc bash -c 'trap "exit 23" TERM; while :; do sleep 0.05; done'
sleep 0.3
check "exits cleanly" stop_pid "$LAST_PID"
finish
S

run_case stop_pid_ignores_sigterm 1 'still running 2s after SIGTERM' <<'S'
start_bg svc bash -c 'trap "" TERM; while :; do sleep 0.05; done'
sleep 0.3
stop_pid "$LAST_PID"; rc=$?
check_eq "a hung service" 0 "$rc"
finish
S

run_case crash_nobody_checked 1 'process svc \(pid [0-9]+\) ended with status 139 \(SIGSEGV\)' <<'S'
start_bg svc bash -c 'trap "exit 0" TERM; while :; do sleep 0.05; done'
sleep 0.3
kill -SEGV "$LAST_PID"
check "something unrelated" true
finish
S

run_case deliberate_sigkill_is_not_a_crash 0 '^1 passed, 0 failed' <<'S'
start_bg svc sleep 100
kill -KILL "$LAST_PID"; wait "$LAST_PID" 2>/dev/null
check "something unrelated" true
finish
S

run_case bail_counts_a_failure 1 'not ok - service did not start.*|0 passed, 1 failed' <<'S'
start_bg svc false
wait_healthy "http://127.0.0.1:1/health" 5 "$LAST_PID" || bail "service did not start"
check "never reached" true
finish
S

run_case bail_fails_fast 1 'exited while waiting' <<'S'
start_bg svc false
wait_healthy "http://127.0.0.1:1/health" 30 "$LAST_PID" || bail "service did not start"
finish
S

run_case skip_is_77 77 '^1 passed, 0 failed, 1 skipped' <<'S'
check "this ran" true
skip "that tool is missing"
finish
S

run_case skip_with_a_failure_is_1 1 '0 passed, 1 failed, 1 skipped' <<'S'
check "this failed" false
skip "that tool is missing"
finish
S

run_case exit_without_finish 1 'ended without calling finish' <<'S'
check "this ran" true
exit 0
S

run_case sanitizer_report_in_a_log 1 'sanitizer report' <<'S'
echo "==1==ERROR: AddressSanitizer: heap-use-after-free" >"$TEST_TMP/svc.log"
check "this ran" true
finish
S

# ctest_strict.sh: a ctest run with a skipped test fails; with HOMEIQ_ALLOW_SKIP=1 it does not.
mkdir -p "$T/proj"
cat >"$T/proj/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.16)
project(skipdemo NONE)
enable_testing()
add_test(NAME passes COMMAND true)
add_test(NAME skips COMMAND sh -c "exit 77")
set_tests_properties(skips PROPERTIES SKIP_RETURN_CODE 77)
C
if cmake -S "$T/proj" -B "$T/proj/b" >/dev/null 2>&1; then
  (cd "$T/proj/b" && ctest >/dev/null 2>&1); rc=$?
  [ "$rc" = 0 ] && ok "plain ctest passes a run with a skipped test (why ctest_strict exists)" ||
    notok "plain ctest: exit $rc"
  (cd "$T/proj/b" && env -u HOMEIQ_ALLOW_SKIP "$HERE/ctest_strict.sh" >"$T/strict.out" 2>&1); rc=$?
  if [ "$rc" != 0 ] && grep -q 'skips (Skipped)' "$T/strict.out"; then ok "ctest_strict.sh fails a run with a skipped test (exit $rc)"
  else notok "ctest_strict.sh on a skipped test: exit $rc"; cat "$T/strict.out"; fi
  (cd "$T/proj/b" && HOMEIQ_ALLOW_SKIP=1 "$HERE/ctest_strict.sh" >"$T/allow.out" 2>&1); rc=$?
  [ "$rc" = 0 ] && ok "HOMEIQ_ALLOW_SKIP=1 accepts the skip on purpose" || notok "HOMEIQ_ALLOW_SKIP=1: exit $rc"
else
  notok "cmake could not configure the ctest_strict demo project"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ] && [ "$PASS" -gt 0 ]
