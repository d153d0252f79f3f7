#!/usr/bin/env bash
# tests/cli/test_backup_influx.sh -- `homeiqctl backup/restore` with InfluxDB.
#
# Why: for InfluxDB homeiqctl delegates to the documented tools
# (`influxd backup -portable` / `influxd restore -portable`); this runs them for
# real against a throw-away influxd (Debian's influxdb 1.x) holding events
# written by a real data-storage, and checks the restored database holds every
# acked event.
# Usage: test_backup_influx.sh HOMEIQCTL DATA_STORAGE
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/influxd.sh"
CTL=$1 STORAGE=$2
N=200

influxd_start || bail "influxd starts"
RPC=$(sed -n 's/^bind-address = "\(.*\)"/\1/p' "$INFLUXD_DIR/influxdb.conf")
export STORAGE_BACKEND=influxdb INFLUXDB_DATABASE=homeiq_bk INFLUXDB_BACKUP_HOST=$RPC
PORT=$(free_port)
start_bg storage env DATA_STORAGE_PORT="$PORT" DATA_DIR="$TEST_TMP/data" "$STORAGE"
wait_healthy "http://127.0.0.1:$PORT/health" 30 "$LAST_PID" || bail "data-storage (influxdb) healthy"

BATCH=$(for ((i = 0; i < N; i++)); do
  printf '{"event_type":"state_changed","entity_id":"sensor.influx_bk","time_fired":"2025-02-01T00:%02d:%02d.000000Z","state":"%d","context_id":"ib-%d"}\n' \
    $((i / 60)) $((i % 60)) "$i" "$i"
done | jq -s -c .)
check_eq "$N events acked by data-storage" "$N" \
  "$(curl -s -H 'Content-Type: application/json' --data-binary "$BATCH" "http://127.0.0.1:$PORT/api/v1/events" | jq .stored)"

"$CTL" backup --out "$TEST_TMP/influx-backup" >"$TEST_TMP/backup.log" 2>&1
RC=$?
cat "$TEST_TMP/backup.log"
check_eq "homeiqctl backup (influxdb) exits 0" 0 "$RC"
check "it ran influxd backup -portable" grep -q "running: influxd backup -portable -database homeiq_bk -host $RPC" "$TEST_TMP/backup.log"
check "the backup has a manifest" bash -c "ls '$TEST_TMP/influx-backup/' | grep -q manifest"

"$CTL" restore --from "$TEST_TMP/influx-backup" --newdb homeiq_restored >"$TEST_TMP/restore.log" 2>&1
RC=$?
cat "$TEST_TMP/restore.log"
check_eq "homeiqctl restore --newdb (influxdb) exits 0" 0 "$RC"
COUNT=""
for _ in $(seq 50); do
  COUNT=$(curl -s -G "$INFLUXDB_URL/query" --data-urlencode 'db=homeiq_restored' \
          --data-urlencode 'q=SELECT count("state") FROM "home_assistant_events"' | jq -r '.results[0].series[0].values[0][1] // empty')
  [ "$COUNT" = "$N" ] && break; sleep 0.2
done
check_eq "the restored database holds every acked event" "$N" "$COUNT"
"$CTL" restore --from "$TEST_TMP/influx-backup" >"$TEST_TMP/restore2.log" 2>&1
check "restoring over the existing database fails (influxd refuses)" test $? -ne 0
check "... and homeiqctl explains what to do" grep -q -- "--newdb" "$TEST_TMP/restore2.log"

stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
influxd_stop
finish
