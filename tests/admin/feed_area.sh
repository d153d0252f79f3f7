# tests/admin/feed_area.sh -- sourced by test_storage_reads.sh (SQLite),
# test_storage_reads_influx.sh (InfluxDB) and test_storage_reads_clickhouse.sh: GET /api/v1/events/feed?area=, the
# live tail's area filter (issue 12: "filters (entity, domain, event type, and
# area once it exists)"). Needs common.sh and a data-storage at $1.
# feed_area_checks URL
feed_area_checks() {
  local u=$1 head f ev
  head=$(curl -s "$u/api/v1/stats" | jq .cursor)
  ev() { # ev ENTITY TIME STATE [AREA]
    printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"%s","context_id":"%s-%s-area"%s}' \
      "$1" "$2" "$3" "$1" "$2" "${4:+,\"area_id\":\"$4\"}"
  }
  check_eq "feed?area=: events with and without an area stored" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary \
       "[$(ev sensor.area_k 2025-06-01T10:00:00Z 1 kitchen),$(ev sensor.area_h 2025-06-01T10:00:01Z 2 hall),$(ev sensor.area_k 2025-06-01T10:00:02Z 3 kitchen),$(ev sensor.area_none 2025-06-01T10:00:03Z 4)]" \
       "$u/api/v1/events")"
  f=$(curl -s "$u/api/v1/events/feed?after=$head&area=kitchen")
  check_eq "feed?after=&area=kitchen: the kitchen's 2, in order, cursor at the head" "1,3 sensor.area_k false" \
    "$(jq -r '"\([.events[].state] | join(",")) \([.events[].entity_id] | unique | join(",")) \(.more)"' <<<"$f")"
  if [ "${FEED_CURSOR_IS_CLOCK:-0}" = 1 ]; then # ClickHouse: the cursor is the horizon (a time), the head moves on
    check "... the cursor is the head (no rescan)" jq -e --argjson h "$head" '.cursor == .head and .cursor > $h' <<<"$f"
  else
    check_eq "... the cursor is the head (no rescan)" "$(curl -s "$u/api/v1/stats" | jq .cursor)" "$(jq .cursor <<<"$f")"
  fi
  check_eq "feed?area=hall without after (the tail's backlog): the hall's one event" '1 2' \
    "$(curl -s "$u/api/v1/events/feed?limit=5&area=hall" | jq -r '"\(.count) \(.events[0].state)"')"
  check_eq "feed?area=hall&domain=light: none" 0 "$(curl -s "$u/api/v1/events/feed?limit=5&area=hall&domain=light" | jq .count)"
  check_eq "feed?area=Bad!: 400 naming area" '400 area' \
    "$(curl -s -w ' %{http_code}' "$u/api/v1/events/feed?area=Bad!" | sed -E 's/^\{"error":"([a-z_]+):.* ([0-9]+)$/\2 \1/')"
}
