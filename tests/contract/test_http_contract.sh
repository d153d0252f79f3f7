#!/usr/bin/env bash
# tests/contract/test_http_contract.sh -- promises of docs/API.md and the
# READMEs that no other test checked, on the real binaries:
#  - every answer carries X-Request-Id, and a client's own is echoed (all three);
#  - a wrong method gets 405 with an Allow header (all three);
#  - POST /api/v1/events/forward: 413 over INGEST_MAX_BODY_BYTES, and 503 (never
#    200) for a request still waiting for its fsync when ingestion shuts down;
#  - ENRICHMENT_FAST_PATH=0 end to end: the same records in storage, byte for
#    byte, as with the fast path (two pipelines side by side);
#  - HOME_ASSISTANT_CA_FILE and HOME_ASSISTANT_INSECURE through the ingestion
#    binary, against the simulator behind a TLS terminator.
# Usage: test_http_contract.sh INGESTION ENRICHMENT STORAGE SIMULATOR
. "$(dirname "$0")/../lib/common.sh"
ING_BIN=$1 ENR_BIN=$2 STO_BIN=$3 SIM_BIN=$4
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$HERE/../enrichment/data

# ---- the three services (storage <- enrichment <- ingestion forward-only) ----
STO_PORT=$(free_port) ENR_PORT=$(free_port) ING_PORT=$(free_port)
STO=http://127.0.0.1:$STO_PORT ENR=http://127.0.0.1:$ENR_PORT ING=http://127.0.0.1:$ING_PORT
start_bg sto env DATA_STORAGE_PORT=$STO_PORT DATA_DIR="$TEST_TMP/sto" "$STO_BIN"; STO_PID=$LAST_PID
wait_healthy "$STO/health" 30 "$STO_PID" || bail "data-storage started"
start_bg enr env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=$STO "$ENR_BIN"; ENR_PID=$LAST_PID
wait_healthy "$ENR/health" 30 "$ENR_PID" || bail "enrichment-pipeline started"
start_bg ing env HOME_ASSISTANT_URL=none WEBSOCKET_INGESTION_PORT=$ING_PORT DATA_DIR="$TEST_TMP/ing" \
  ENRICHMENT_PIPELINE_URL=$ENR INGEST_MAX_BODY_BYTES=4096 SPOOL_FSYNC_MS=60000 "$ING_BIN"; ING_PID=$LAST_PID
wait_http "$ING/health" 30 "$ING_PID" || bail "websocket-ingestion started"

# header NAME FILE : the value of header NAME in a curl -D dump
header() { tr -d '\r' <"$2" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$1")" 'tolower($0) ~ "^" n ":" { sub(/^[^:]*: */, ""); print; exit }'; }

# ---- X-Request-Id ---------------------------------------------------------
for svc in "data-storage $STO /health" "enrichment-pipeline $ENR /health" "websocket-ingestion $ING /health" \
           "data-storage $STO /api/v1/events?limit=0" "enrichment-pipeline $ENR /api/v1/nope"; do
  set -- $svc
  curl -s -o /dev/null -D "$TEST_TMP/h1" "$2$3"
  check "$1 GET $3: an X-Request-Id on the answer" test -n "$(header X-Request-Id "$TEST_TMP/h1")"
  curl -s -o /dev/null -D "$TEST_TMP/h2" -H 'X-Request-Id: test-req-4711' "$2$3"
  check_eq "$1 GET $3: the client's X-Request-Id is echoed" test-req-4711 "$(header X-Request-Id "$TEST_TMP/h2")"
done
curl -s -o /dev/null -D "$TEST_TMP/h3" "$STO/health"; curl -s -o /dev/null -D "$TEST_TMP/h4" "$STO/health"
check "two requests get two different ids" test "$(header X-Request-Id "$TEST_TMP/h3")" != "$(header X-Request-Id "$TEST_TMP/h4")"

# ---- 405 with Allow ---------------------------------------------------------
for svc in "data-storage $STO/api/v1/events PUT" "enrichment-pipeline $ENR/api/v1/events GET" \
           "websocket-ingestion $ING/api/v1/events/forward GET" "data-storage $STO/health POST"; do
  set -- $svc
  code=$(curl -s -o /dev/null -D "$TEST_TMP/h405" -w '%{http_code}' -X "$3" "$2")
  check_eq "$1 $3 ${2#http://127.0.0.1:*/}: 405" 405 "$code"
  check "$1 $3 ${2#http://127.0.0.1:*/}: an Allow header naming the methods ($(header Allow "$TEST_TMP/h405"))" \
    grep -qE '^(GET|POST)(, [A-Z]+)*$' <<<"$(header Allow "$TEST_TMP/h405")"
  check "... and it does not name the method refused" bash -c "! grep -qw '$3' <<<'$(header Allow "$TEST_TMP/h405")'"
done

# ---- /forward: 413, and 503 for a request caught by shutdown -----------------
head -c 5000 /dev/zero | tr '\0' ' ' >"$TEST_TMP/big.json"; echo '[]' >>"$TEST_TMP/big.json"
check_eq "/forward over INGEST_MAX_BODY_BYTES: 413" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$TEST_TMP/big.json" "$ING/api/v1/events/forward")"
EV='{"event_type":"state_changed","data":{"entity_id":"sensor.shutdown","old_state":null,"new_state":{"entity_id":"sensor.shutdown","state":"1"}},"time_fired":"2025-06-14T08:33:20Z","context":{"id":"shutdown-1"}}'
N0=$(curl -s "$ING/health" | jq .spool.next_seq)
curl -s -o "$TEST_TMP/sd.body" -w '%{http_code}' --data-binary "$EV" "$ING/api/v1/events/forward" >"$TEST_TMP/sd.code" &
CURL=$!
appended() { [ "$(curl -s "$ING/health" | jq .spool.next_seq)" -gt "$N0" ]; }
check "the event is spooled, its answer waits for the fsync (SPOOL_FSYNC_MS=60000)" wait_for 10 appended
check "... no answer yet" kill -0 "$CURL"
check "ingestion exits cleanly on SIGTERM with a request waiting" stop_pid "$ING_PID"
wait "$CURL"
SD=$(cat "$TEST_TMP/sd.code")
echo "# the request waiting at shutdown got: $SD $(cat "$TEST_TMP/sd.body")"
# The final sync at shutdown makes the spooled event durable: 200 is then the
# truth; 503 (retry) if that sync failed. Never a dropped connection (000).
check "the waiting request got an answer, 200 (made durable by the final sync) or 503 ($SD)" \
  test "$SD" = 200 -o "$SD" = 503
if [ "$SD" = 503 ]; then
  check "... a 503 says why" grep -q "shutting down before the events were durable" "$TEST_TMP/sd.body"
fi
# Restarted on the same spool, ingestion delivers it (it was durable).
start_bg ing2 env HOME_ASSISTANT_URL=none WEBSOCKET_INGESTION_PORT=$ING_PORT DATA_DIR="$TEST_TMP/ing" \
  ENRICHMENT_PIPELINE_URL=$ENR "$ING_BIN"; ING_PID=$LAST_PID
wait_http "$ING/health" 30 "$ING_PID" || bail "websocket-ingestion restarted"
stored_shutdown() { [ "$(curl -s "$STO/api/v1/events?entity_id=sensor.shutdown" | jq .count)" = 1 ]; }
check "the event answered at shutdown is stored once" wait_for 20 stored_shutdown
check "restarted ingestion exits cleanly" stop_pid "$ING_PID"

# ---- ENRICHMENT_FAST_PATH=0 end to end ----------------------------------------
STO2_PORT=$(free_port) ENR2_PORT=$(free_port)
start_bg sto2 env DATA_STORAGE_PORT=$STO2_PORT DATA_DIR="$TEST_TMP/sto2" "$STO_BIN"; STO2_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$STO2_PORT/health" 30 "$STO2_PID" || bail "second data-storage started"
start_bg enr2 env ENRICHMENT_PIPELINE_PORT=$ENR2_PORT DATA_STORAGE_URL=http://127.0.0.1:$STO2_PORT \
  ENRICHMENT_FAST_PATH=0 "$ENR_BIN"; ENR2_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$ENR2_PORT/health" 30 "$ENR2_PID" || bail "enrichment-pipeline (ENRICHMENT_FAST_PATH=0) started"
# the examples (envelopes, as ingestion forwards them), the edge cases, spaced and compact
jq -c '.' "$DATA/ha_examples.json" >"$TEST_TMP/fp1.json"
jq '[.[].input]' "$DATA/edge_cases.json" >"$TEST_TMP/fp2.json"
jq -c '[.[].event]' "$DATA/ha_examples.json" >"$TEST_TMP/fp3.json"
for f in fp1 fp2 fp3; do
  a=$(curl -s -w ' %{http_code}' --data-binary @"$TEST_TMP/$f.json" "$ENR/api/v1/events")
  b=$(curl -s -w ' %{http_code}' --data-binary @"$TEST_TMP/$f.json" "http://127.0.0.1:$ENR2_PORT/api/v1/events")
  check_eq "$f: the same answer with and without the fast path" "$a" "$b"
done
m1=$(curl -s "$ENR/metrics" | awk '$1 == "homeiq_enrichment_fast_path_events_total" {print $2}')
m2=$(curl -s "http://127.0.0.1:$ENR2_PORT/metrics" | awk '$1 == "homeiq_enrichment_fast_path_events_total" {print $2}')
echo "# fast-path events: default ${m1:-?}, ENRICHMENT_FAST_PATH=0 ${m2:-?}"
check "the default pipeline took the fast path for some events" test "${m1:-0}" != 0 -a -n "${m1:-}"
check "ENRICHMENT_FAST_PATH=0 took it for none" test "${m2:-0}" = 0
for s in "$STO" "http://127.0.0.1:$STO2_PORT"; do
  curl -s "$s/api/v1/events?limit=10000" >"$TEST_TMP/ev.json"
  python3 "$HERE/../storage/raw_records.py" --strip-storage-keys "$TEST_TMP/ev.json" | grep -v sensor.shutdown
done | LC_ALL=C sort >"$TEST_TMP/both.raw"
check "both stores hold records" test "$(wc -l <"$TEST_TMP/both.raw")" -gt 20
check "every record byte-identical with and without the fast path" \
  test "$(LC_ALL=C uniq -c "$TEST_TMP/both.raw" | awk '$1 != 2' | wc -l)" = 0

# ---- HOME_ASSISTANT_CA_FILE / HOME_ASSISTANT_INSECURE through the binary --------
mkcert() { # mkcert NAME SAN
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" -addext "subjectAltName=$2" \
    -keyout "$TEST_TMP/$1.key" -out "$TEST_TMP/$1.pem" 2>/dev/null
}
mkcert localhost "DNS:localhost,IP:127.0.0.1" || bail "openssl made a test certificate"
mkcert example.org "DNS:example.org" || bail "openssl made a test certificate"
SIM_PORT=$(free_port)
start_bg sim env SIMULATOR_PORT=$SIM_PORT "$SIM_BIN" --rate 20
wait_healthy "http://127.0.0.1:$SIM_PORT/health" 20 "$LAST_PID" || bail "simulator started"
GOOD=$(free_port) OTHER=$(free_port)
start_bg proxy_good python3 "$HERE/../simulator/tls_proxy.py" "$GOOD" "$SIM_PORT" "$TEST_TMP/localhost.pem" "$TEST_TMP/localhost.key"
start_bg proxy_other python3 "$HERE/../simulator/tls_proxy.py" "$OTHER" "$SIM_PORT" "$TEST_TMP/example.org.pem" "$TEST_TMP/example.org.key"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for 10 port_open "$GOOD" && wait_for 10 port_open "$OTHER" || bail "TLS terminators listening"
# tls_ing NAME URL VAR=value... : an ingestion against HA at URL; sets P (its port) and PID
tls_ing() {
  local name=$1 url=$2; shift 2
  P=$(free_port)
  start_bg "$name" env WEBSOCKET_INGESTION_PORT=$P DATA_DIR="$TEST_TMP/$name" ENRICHMENT_PIPELINE_URL=$ENR \
    HOME_ASSISTANT_URL="$url" HOME_ASSISTANT_TOKEN=homeiq-simulator-token RECONNECT_MIN_DELAY_MS=200 \
    RECONNECT_MAX_DELAY=1 "$@" "$ING_BIN"
  PID=$LAST_PID
  wait_http "http://127.0.0.1:$P/health" 20 "$PID" || bail "websocket-ingestion ($name) started"
}
ha_state() { curl -s "http://127.0.0.1:$P/health" | jq -r .home_assistant.state; }
ha_error_has() { curl -s "http://127.0.0.1:$P/health" | jq -r .home_assistant.last_error | grep -qiE "$1"; }
subscribed() { [ "$(ha_state)" = subscribed ]; }

tls_ing tls_ca "https://localhost:$GOOD" HOME_ASSISTANT_CA_FILE="$TEST_TMP/localhost.pem"
check "HOME_ASSISTANT_CA_FILE: wss to a certificate it signs -> subscribed" wait_for 15 subscribed
check "... events arrive over TLS" wait_for 15 bash -c "[ \$(curl -s http://127.0.0.1:$P/health | jq .events.received) -gt 0 ]"
check "HOME_ASSISTANT_CA_FILE: exits cleanly" stop_pid "$PID"

tls_ing tls_noca "https://localhost:$GOOD"
check "no CA file: the self-signed certificate is refused (last_error names it)" wait_for 15 ha_error_has 'certificate|verif'
check "... never subscribed" test "$(ha_state)" != subscribed
check "no CA file: exits cleanly" stop_pid "$PID"

tls_ing tls_mismatch "https://localhost:$OTHER" HOME_ASSISTANT_CA_FILE="$TEST_TMP/example.org.pem"
check "CA file, certificate for another host name: refused (hostname mismatch)" wait_for 15 ha_error_has 'hostname|mismatch'
check "... never subscribed" test "$(ha_state)" != subscribed
check "hostname mismatch: exits cleanly" stop_pid "$PID"

tls_ing tls_insecure "https://localhost:$OTHER" HOME_ASSISTANT_INSECURE=1
check "HOME_ASSISTANT_INSECURE=1: no verification -> subscribed" wait_for 15 subscribed
check "... and it warns in the log" grep -qiE 'insecure|not verif' "$TEST_TMP/tls_insecure.log"
check "HOME_ASSISTANT_INSECURE=1: exits cleanly" stop_pid "$PID"

for p in "$ENR2_PID" "$STO2_PID" "$ENR_PID" "$STO_PID"; do
  stop_pid "$p"; check_eq "${TEST_PID_NAME[$p]} exits cleanly" 0 $?
done
finish
