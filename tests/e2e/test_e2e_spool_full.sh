#!/usr/bin/env bash
# test_e2e_spool_full.sh COUNT -- the spool fills up on the HA side (docs/SPOOL.md
# "When the spool is full"), on real processes: the simulator sends COUNT events
# while enrichment is down and SPOOL_MAX_BYTES holds far fewer. Promised: the
# oldest data is kept (never overwritten), new events from HA are dropped and
# counted (events.dropped, homeiq_ingestion_events_dropped_total{reason="spool_full"},
# an error in the log), /health is 503 spool_full; once downstream is back the
# spooled events are delivered -- exactly the first ones HA sent -- and health
# recovers.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
COUNT=${1:-3000}

ENR_PORT=$(free_port)   # nothing listens there yet: downstream is down
start_sim 2000 "$COUNT"
start_ingestion ingestion SPOOL_MAX_BYTES=1048576 SPOOL_SEGMENT_BYTES=131072 DOWNSTREAM_UNHEALTHY_S=1
check "the simulator sent all $COUNT events" wait_until 120 sim_done
check "ingestion received them all (its counter stops)" wait_until 30 ing_quiet
RECV=$(ing_stat .events.received) DROPPED=$(ing_stat .events.dropped) DEPTH=$(ing_stat .spool.depth)
echo "# received $RECV, dropped $DROPPED, spooled $DEPTH"
check_eq "every sent event was received" "$(sim_stat sent)" "$RECV"
check "the spool filled up: events were dropped" test "$DROPPED" -gt 0
check_eq "received = spooled + dropped (nothing lost silently)" "$RECV" $((DEPTH + DROPPED))
h=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$ING_PORT/health")
check_eq "/health: 503 spool_full" "503 spool_full" "${h##* } $(jq -r .reason <<<"${h% *}")"
check_eq "homeiq_ingestion_spool_full 1" 1 \
  "$(curl -s "http://127.0.0.1:$ING_PORT/metrics" | awk '$1 == "homeiq_ingestion_spool_full" {print $2}')"
check_eq "homeiq_ingestion_events_dropped_total{reason=\"spool_full\"} counts them" "$DROPPED" \
  "$(curl -s "http://127.0.0.1:$ING_PORT/metrics" | awk '$1 == "homeiq_ingestion_events_dropped_total{reason=\"spool_full\"}" {print $2}')"
check "the drop is logged as an error" grep -qE 'error.*(spool full|spool_full)' "$TEST_TMP/ingestion.log"

# Downstream comes back: the spool drains, and what is stored is exactly the
# first DEPTH events HA sent (the oldest were kept, the newest dropped).
start_storage storage
start_enrichment enrichment
check "the spool drains" wait_until 120 ing_drained
check "health recovers (200)" wait_until 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$ING_PORT/health)\" = 200 ]"
sent_keys | head -n "$DEPTH" | sort >"$TEST_TMP/oldest.keys"
stored_keys | sort >"$TEST_TMP/stored.keys"
check_eq "storage holds the $DEPTH spooled events" "$DEPTH" "$(wc -l <"$TEST_TMP/stored.keys")"
check "... and they are the oldest ones, the first $DEPTH HA sent" cmp -s "$TEST_TMP/oldest.keys" "$TEST_TMP/stored.keys"

check "ingestion exits cleanly" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish
