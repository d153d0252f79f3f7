#!/usr/bin/env bash
# make_events_v10.sh DATA_STORAGE_BIN OUT.db -- how events_v10_main-0d7b6c3.db and its answers
# (events_v10_main-0d7b6c3.answers) were made: main's data-storage at 0d7b6c3 (schema 10:
# events_domain_time over every event) stores 15 records in four batches -- sensor.d10_power
# with a registry context and a label, light.d10_lamp without, binary_sensor.d10_door in the
# hall, sensor.d10_odd whose record names another domain ("custom"), call_service without an
# entity but with domain light, automation_triggered without either, a late batch (older than
# the one before) and a second home (cabin) with the same entity ids -- then answers every read
# of v10_queries.txt (one line each: the path, a tab, the answer as jq -cS prints it), is
# stopped cleanly and its events.db copied. Kept to remake the fixture; the test
# (test_domain_migration.sh) does not run it: the fixture and answers must come from the old binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fixture_lib.sh" "$@"   # BIN and OUT from the arguments, data-storage started; post, ctx, fixture_finish
r() { # r TYPE ENTITY TIME N STATE EXTRA
  printf '{"event_type":"%s","entity_id":%s,"time_fired":"%s","context_id":"v10-%s","state":%s,"attributes":{}%s}' "$@"; }
num() { printf ',"value":%s,"state_class":"measurement","unit_of_measurement":"W"' "$1"; }
post --data-binary "[$(r state_changed '"sensor.d10_power"' 2026-06-01T10:00:00.000001Z 1 '"120"' "$(ctx kitchen ground dev1 energy)$(num 120)"),
$(r state_changed '"sensor.d10_power"' 2026-06-01T10:00:01.000001Z 2 '"130"' "$(ctx kitchen ground dev1 energy)$(num 130)"),
$(r state_changed '"light.d10_lamp"' 2026-06-01T10:00:02.000001Z 3 '"on"' ''),
$(r state_changed '"light.d10_lamp"' 2026-06-01T10:00:03.000001Z 4 '"off"' ''),
$(r state_changed '"binary_sensor.d10_door"' 2026-06-01T10:00:04.000001Z 5 '"on"' "$(ctx hall ground dev2 doors)"),
$(r state_changed '"sensor.d10_odd"' 2026-06-01T10:00:05.000001Z 6 '"5"' ',"domain":"custom"'),
$(r call_service null 2026-06-01T10:00:06.000001Z 7 null ',"domain":"light"'),
$(r automation_triggered null 2026-06-01T10:00:07.000001Z 8 null '')]"
post --data-binary "[$(r state_changed '"sensor.d10_power"' 2026-06-01T12:00:00.000001Z 9 '"140"' "$(ctx kitchen ground dev1 energy)$(num 140)"),
$(r state_changed '"light.d10_lamp"' 2026-06-01T12:00:01.000001Z 10 '"on"' ''),
$(r call_service null 2026-06-01T12:00:02.000001Z 11 null ',"domain":"light"')]"
post --data-binary "[$(r state_changed '"light.d10_lamp"' 2026-06-01T11:00:00.000001Z 12 '"dim"' ''),
$(r state_changed '"sensor.d10_power"' 2026-06-01T11:00:01.000001Z 13 '"125"' "$(ctx kitchen ground dev1 energy)$(num 125)")]"
post -H "X-HomeIQ-Home: cabin" --data-binary "[$(r state_changed '"light.d10_lamp"' 2026-06-01T10:30:00.000001Z 14 '"on"' ''),
$(r state_changed '"sensor.d10_power"' 2026-06-01T10:30:01.000001Z 15 '"7"' "$(ctx attic top dev9 solar)$(num 7)")]"
while IFS= read -r path; do
  printf '%s\t%s\n' "$path" "$(curl -s "http://127.0.0.1:$PORT$path" | jq -cS .)"
done <"$here/v10_queries.txt" >"${OUT%.db}.answers"
fixture_finish "$OUT"
