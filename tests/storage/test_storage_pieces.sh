#!/usr/bin/env bash
# test_storage_pieces.sh -- data-storage commits a large POST in pieces of at
# most STORAGE_PIECE_BYTES of event text (issue 15: memory bounded whatever the
# batch size), and the answer is still the one answer of the whole request.
#
# Use: BACKEND=sqlite|influxdb test_storage_pieces.sh /path/to/homeiq-data-storage
# With STORAGE_PIECE_BYTES=4096 a 400-event body (with rejects and dead letters
# in it) must be committed as many transactions (homeiq_storage_batches_total),
# answered 200 once with the totals and every reject's index in the request,
# every valid event stored exactly once; posted again, every event is a
# duplicate; a body the text scan declines (escaped key) still takes the
# general path; a piece that cannot be committed answers 503 and the retry
# stores the rest without a duplicate. On InfluxDB (one piece slot) a POST
# under way keeps its slot: one arriving meanwhile waits for its answer.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"

BIN=${1:?usage: test_storage_pieces.sh /path/to/homeiq-data-storage}
BACKEND=${BACKEND:-sqlite}
N=400
echo "# data-storage pieces, backend=$BACKEND"
LOG_LEVEL=${LOG_LEVEL:-warn}
[ "$BACKEND" = influxdb ] && LOG_LEVEL=debug # "batch: N stored" per piece: the order pieces were committed in
export STORAGE_BACKEND=$BACKEND DATA_DIR=$TEST_TMP/data LOG_LEVEL STORAGE_PIECE_BYTES=4096
export INFLUXDB_PING_INTERVAL_MS=200 INFLUXDB_DATABASE=pieces SQLITE_BUSY_TIMEOUT_MS=300
if [ "$BACKEND" = influxdb ]; then influxd_start || bail "influxd starts"; fi
PORT=$(free_port)
U=http://127.0.0.1:$PORT
DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
STORAGE_PID=$LAST_PID
wait_healthy "$U/health" 30 "$STORAGE_PID" || bail "data-storage healthy"

post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; }
jqe() { jq -e "$@" >/dev/null; }
committed() { curl -s "$U/metrics" | awk '$1 == "homeiq_storage_batches_total{result=\"committed\"}" { print $2 + 0 }'; }

# 400 events; 7 and 333 lack time_fired (rejected, dead-lettered), plus 2 dead letters made upstream
jq -nc --argjson n $N --argjson from 0 -f "$here/gen_events.jq" >"$TEST_TMP/all.json"
jq -c '{events: (.[7] |= del(.time_fired) | .[333] |= del(.time_fired)),
        dead_letters: [{error: "refused upstream", source: "websocket-ingestion", event: {"x": 1}},
                       {error: "too big", source: "enrichment-pipeline", event: "raw"}]}' \
  "$TEST_TMP/all.json" >"$TEST_TMP/body.json"
bytes=$(stat -c %s "$TEST_TMP/body.json")
c0=$(committed)
check_eq "a $bytes-byte body of $N events is answered 200" 200 "$(post "$TEST_TMP/body.json")"
cp "$TEST_TMP/resp" "$TEST_TMP/first.json"
c1=$(committed)
check "it was committed in pieces of <= 4 KiB (commits: $((c1 - c0)), want > $((bytes / 4096 / 2)))" \
  [ $((c1 - c0)) -gt $((bytes / 4096 / 2)) ]
check_eq "stored: every valid event" $((N - 2)) "$(jq .stored "$TEST_TMP/first.json")"
check_eq "duplicates: none" 0 "$(jq .duplicates "$TEST_TMP/first.json")"
check_eq "rejected: the two invalid events, by their index in the request" "[7,333]" \
  "$(jq -c '[.rejected[].index]' "$TEST_TMP/first.json")"
check "each reject says why" jqe '.rejected | all(.error | test("time_fired"))' "$TEST_TMP/first.json"
check_eq "dead_lettered: 2 rejects + 2 dead letters, once each" 4 "$(jq .dead_lettered "$TEST_TMP/first.json")"

# read back: every valid event exactly once
curl -s "$U/api/v1/events?limit=10000" >"$TEST_TMP/got.json"
check_eq "GET: $((N - 2)) events" $((N - 2)) "$(jq .count "$TEST_TMP/got.json")"
check_eq "GET: each context id once" $((N - 2)) "$(jq '[.events[].context_id] | unique | length' "$TEST_TMP/got.json")"
check_eq "GET: the rejected ones are not there" 0 \
  "$(jq '[.events[] | select(.context_id == "ctx-7" or .context_id == "ctx-333")] | length' "$TEST_TMP/got.json")"
curl -s "$U/api/v1/dead-letters?limit=100" >"$TEST_TMP/dead.json"
check_eq "dead letters: 4 stored" 4 "$(jq .count "$TEST_TMP/dead.json")"

# the same body again: pieces find everything there already
check_eq "posted again: 200" 200 "$(post "$TEST_TMP/body.json")"
check_eq "posted again: nothing stored" 0 "$(jq .stored "$TEST_TMP/resp")"
check_eq "posted again: every valid event a duplicate" $((N - 2)) "$(jq .duplicates "$TEST_TMP/resp")"

# a body the scan declines (an escaped key) takes the general path: one commit
jq -c '{events: .[0:3]}' "$TEST_TMP/all.json" | sed 's/"origin"/"\\u006frigin"/' >"$TEST_TMP/escaped.json"
c2=$(committed)
check_eq "escaped key: 200" 200 "$(post "$TEST_TMP/escaped.json")"
check_eq "escaped key: one commit (the general path)" 1 "$(( $(committed) - c2 ))"
check_eq "escaped key: 3 duplicates" 3 "$(jq .duplicates "$TEST_TMP/resp")"

# malformed: still 400 with the byte position
printf '{"events":[{"event_type":"x",]}' >"$TEST_TMP/bad.json"
check_eq "malformed: 400" 400 "$(post "$TEST_TMP/bad.json")"
check "malformed: the answer names the byte" jqe '.error | test("byte")' "$TEST_TMP/resp"

# four large POSTs at once (pieces of each wait for a slot with the backend): each answered 200, all stored once
for k in 1 2 3 4; do
  jq -nc --argjson n 150 --argjson from $((k * 10000)) -f "$here/gen_events.jq" | jq -c '{events: .}' >"$TEST_TMP/c$k.json"
done
posters=()
for k in 1 2 3 4; do
  curl -s -o "$TEST_TMP/c$k.resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' \
    --data-binary @"$TEST_TMP/c$k.json" >"$TEST_TMP/c$k.code" &
  posters+=($!)
done
for pid in "${posters[@]}"; do wait "$pid"; done
check_eq "four at once: each answered 200" "200200200200" "$(cat "$TEST_TMP"/c[1-4].code)"
check_eq "four at once: 600 stored" 600 "$(jq -s 'map(.stored) | add' "$TEST_TMP"/c[1-4].resp)"
curl -s "$U/api/v1/events?limit=10000" >"$TEST_TMP/got1.json"
check_eq "GET: $((N - 2 + 600)) events, each once" $((N - 2 + 600)) \
  "$(jq '[.events[].context_id] | unique | length' "$TEST_TMP/got1.json")"
check_eq "GET: no duplicate rows" "$(jq .count "$TEST_TMP/got1.json")" \
  "$(jq '[.events[].context_id] | unique | length' "$TEST_TMP/got1.json")"

# two piece slots (InfluxDB, session 7: pieces built from the records' text): a request under way keeps its slot
# until its last piece; a third POST arriving while two are under way waits for one of them to finish, rather than
# taking a slot between their pieces. Pieces tell their request by size (STORAGE_PIECE_BYTES=4096, events of
# 325-800 bytes): A's events unpadded (4+ to a piece), B's padded by 5000 (one each), C's by 1150 (two each).
if [ "$BACKEND" = influxdb ]; then
  jq -nc --argjson n 1000 --argjson from 50000 -f "$here/gen_events.jq" | jq -c '{events: .}' >"$TEST_TMP/a.json"
  jq -nc --argjson n 150 --argjson from 60000 -f "$here/gen_events.jq" |
    jq -c --arg pad "$(printf '%05000d' 0)" '{events: map(.attributes.pad = $pad)}' >"$TEST_TMP/b.json"
  jq -nc --argjson n 60 --argjson from 70000 -f "$here/gen_events.jq" |
    jq -c --arg pad "$(printf '%01150d' 0)" '{events: map(.attributes.pad = $pad)}' >"$TEST_TMP/c.json"
  log_from=$(wc -l <"$TEST_TMP/storage.log")
  pending() { [ "$(curl -s "$U/health" | jq .pending_requests)" = "$1" ]; }
  slot_post() { # slot_post NAME : posts NAME.json in the background
    curl -s -o "$TEST_TMP/$1.resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' \
      --data-binary @"$TEST_TMP/$1.json" >"$TEST_TMP/$1.code" &
  }
  # influxd frozen while the three arrive (well inside INFLUXDB_TIMEOUT_MS), so A and B are both under way
  # when C comes, however fast or slow this machine is; thawed, A and B go on and C waits for a slot
  kill -STOP "$INFLUXD_PID"
  slot_post a; poster_a=$!
  wait_for 8 pending 1 || { kill -CONT "$INFLUXD_PID"; bail "the large POST is under way"; }
  slot_post b; poster_b=$!
  wait_for 8 pending 2 || { kill -CONT "$INFLUXD_PID"; bail "the second POST is under way"; }
  slot_post c; poster_c=$!
  check "the third POST arrived while two were under way" wait_for 8 pending 3
  kill -CONT "$INFLUXD_PID"
  wait "$poster_a" "$poster_b" "$poster_c"
  check_eq "slots kept: all answered 200" "200200200" "$(cat "$TEST_TMP/a.code" "$TEST_TMP/b.code" "$TEST_TMP/c.code")"
  check_eq "slots kept: 1210 stored" 1210 "$(jq -s 'map(.stored) | add' "$TEST_TMP"/[abc].resp)"
  order=$(tail -n +$((log_from + 1)) "$TEST_TMP/storage.log" | sed -n 's/.*batch: \([0-9]*\) stored.*/\1/p' | tr '\n' ' ')
  # from C's first piece (2 events) on, no piece of A (more than 2) or none of B (1) is committed
  check "slots kept: the third POST's pieces only after the first or the second POST's last (pieces: $order)" \
    awk -v s="$order" 'BEGIN { n = split(s, c, " "); f = 0; for (i = 1; i <= n; i++) if (c[i] == 2) { f = i; break }
      if (!f) exit 1; a = 0; b = 0; for (i = f; i <= n; i++) { if (c[i] > 2) a = 1; if (c[i] == 1) b = 1 } exit a && b }'
fi

# a piece that cannot be committed: 503, and the retry stores the rest once
if [ "$BACKEND" = sqlite ]; then
  jq -nc --argjson n 200 --argjson from 1000 -f "$here/gen_events.jq" | jq -c '{events: .}' >"$TEST_TMP/more.json"
  # a second writer holds the database's write lock: storage's busy wait gives up and answers 503
  python3 - "$DATA_DIR/events.db" "$TEST_TMP/locked" <<'EOF' &
import sqlite3, sys, time, os
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(3)
c.execute("ROLLBACK")
EOF
  locker=$!
  wait_for 10 test -f "$TEST_TMP/locked" || bail "the lock is held"
  check_eq "a batch while the database is locked: 503" 503 "$(post "$TEST_TMP/more.json")"
  wait "$locker"
  check_eq "retried: 200" 200 "$(post "$TEST_TMP/more.json")"
  check_eq "retried: stored + duplicates = 200" 200 "$(jq '.stored + .duplicates' "$TEST_TMP/resp")"
  curl -s "$U/api/v1/events?limit=10000" >"$TEST_TMP/got2.json"
  check_eq "GET: every event once" $((N - 2 + 600 + 200)) "$(jq '[.events[].context_id] | unique | length' "$TEST_TMP/got2.json")"
  check_eq "GET: no duplicate rows" "$(jq '.count' "$TEST_TMP/got2.json")" \
    "$(jq '[.events[].context_id] | unique | length' "$TEST_TMP/got2.json")"
fi

check "SIGTERM: exits 0" stop_pid "$STORAGE_PID"
finish
