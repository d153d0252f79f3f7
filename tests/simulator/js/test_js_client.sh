#!/usr/bin/env bash
# test_js_client.sh -- runs Home Assistant's official JS client (home-assistant-js-websocket,
# exact versions in package-lock.json) against homeiq-ha-simulator.
# usage: test_js_client.sh SIMULATOR_BIN
. "$(dirname "$0")/../../lib/common.sh"
SIM=${1:?simulator binary}
JS_DIR=$(cd "$(dirname "$0")" && pwd)

# node_modules is not committed: install the locked versions once (serialised,
# so parallel test runs do not race on the same folder).
if [ ! -d "$JS_DIR/node_modules/home-assistant-js-websocket" ] || [ ! -d "$JS_DIR/node_modules/ws" ]; then
  (
    flock 9
    if [ ! -d "$JS_DIR/node_modules/home-assistant-js-websocket" ] || [ ! -d "$JS_DIR/node_modules/ws" ]; then
      cd "$JS_DIR" && npm ci --no-audit --no-fund --loglevel=error
    fi
  ) 9>"/tmp/homeiq-simulator-js-npm.lock" >"$TEST_TMP/npm.out" 2>&1
  check "npm ci installed the locked JS client" test -d "$JS_DIR/node_modules/home-assistant-js-websocket"
  [ "$FAILS" = 0 ] || { cat "$TEST_TMP/npm.out"; bail "the JS client is not installed: nothing else can run"; }
fi

PORT=$(free_port)
SIMULATOR_PORT=$PORT start_bg sim "$SIM" --rate 40 --seed 5
SIM_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$PORT/health" 10 || bail "simulator started"

(cd "$JS_DIR" && node test_js_client.mjs "$PORT") | tee "$TEST_TMP/js.out"
check "official JS client test script passed" test "${PIPESTATUS[0]}" = 0
check "JS client: its checks reported" grep -q '^js: [0-9]* passed, 0 failed' "$TEST_TMP/js.out"
stop_pid "$SIM_PID"
check "simulator: clean exit (no leaks)" test $? = 0
finish
