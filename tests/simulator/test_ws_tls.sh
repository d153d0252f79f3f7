#!/usr/bin/env bash
# test_ws_tls.sh -- the client side of lib/ws.c over TLS (wss://): certificate and
# hostname verification, SNI, the insecure switch, and plain connect errors. A small
# Python TLS terminator (tls_proxy.py) sits in front of the simulator.
# usage: test_ws_tls.sh SIMULATOR_BIN WS_PROBE_BIN
. "$(dirname "$0")/../lib/common.sh"
SIM=${1:?simulator binary}
PROBE=${2:?ws_probe binary}
HERE=$(cd "$(dirname "$0")" && pwd)

mkcert() { # mkcert NAME SAN
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" -addext "subjectAltName=$2" \
    -keyout "$TEST_TMP/$1.key" -out "$TEST_TMP/$1.pem" 2>/dev/null
}
mkcert localhost "DNS:localhost,IP:127.0.0.1"
mkcert example.org "DNS:example.org"

wait_port() { local i; for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
run_probe() { # run_probe NAME URL [ENV=...]... : transcript in NAME.out
  local name=$1 url=$2; shift 2
  env "$@" "$PROBE" "$url" auth wait:auth_ok >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log"
}

SPORT=$(free_port)
SIMULATOR_PORT=$SPORT start_bg sim "$SIM"
SIM_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$SPORT/health" 10 || bail "simulator started"
GOOD=$(free_port)
start_bg proxy_good python3 "$HERE/tls_proxy.py" "$GOOD" "$SPORT" "$TEST_TMP/localhost.pem" "$TEST_TMP/localhost.key"
OTHER=$(free_port)
start_bg proxy_other python3 "$HERE/tls_proxy.py" "$OTHER" "$SPORT" "$TEST_TMP/example.org.pem" "$TEST_TMP/example.org.key"
wait_port "$GOOD" && wait_port "$OTHER"

run_probe good_name "wss://localhost:$GOOD/api/websocket" PROBE_CA_FILE="$TEST_TMP/localhost.pem"
check "wss: trusted CA + matching hostname (SNI) -> auth_ok" grep -q '"type":"auth_ok"' "$TEST_TMP/good_name.out"
run_probe good_ip "wss://127.0.0.1:$GOOD/api/websocket" PROBE_CA_FILE="$TEST_TMP/localhost.pem"
check "wss: IP address checked against the IP SAN -> auth_ok" grep -q '"type":"auth_ok"' "$TEST_TMP/good_ip.out"
run_probe no_ca "wss://localhost:$GOOD/api/websocket"
check "wss: self-signed cert not in the system store -> refused" grep -qE '^CLOSE 1006 .*(certificate|self.signed)' "$TEST_TMP/no_ca.out"
check "wss: refused before any WebSocket message" bash -c "! grep -q auth_required $TEST_TMP/no_ca.out"
run_probe mismatch "wss://localhost:$OTHER/api/websocket" PROBE_CA_FILE="$TEST_TMP/example.org.pem"
check "wss: trusted cert for another hostname -> refused (hostname mismatch)" grep -qE '^CLOSE 1006 .*hostname mismatch' "$TEST_TMP/mismatch.out"
run_probe insecure "wss://localhost:$OTHER/api/websocket" PROBE_INSECURE=1
check "wss: insecure=1 skips verification -> auth_ok" grep -q '"type":"auth_ok"' "$TEST_TMP/insecure.out"

DEAD=$(free_port)
run_probe refused "ws://127.0.0.1:$DEAD/api/websocket"
check "ws: connection refused -> on_close 1006 'connect failed'" grep -q '^CLOSE 1006 connect failed' "$TEST_TMP/refused.out"
"$PROBE" "http://127.0.0.1:$SPORT/" auth >/dev/null 2>&1
check "ws: non-ws URL is rejected up front" test $? = 2
run_probe notws "ws://127.0.0.1:$SPORT/not-the-api"
check "ws: a 404 answer -> on_close 1006 'handshake failed'" grep -q '^CLOSE 1006 handshake failed: upgrade refused: HTTP/1.1 404' "$TEST_TMP/notws.out"

stop_pid "$SIM_PID"
check "simulator: clean exit (no leaks)" test $? = 0
finish
