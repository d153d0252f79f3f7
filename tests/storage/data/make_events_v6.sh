#!/usr/bin/env bash
# make_events_v6.sh DATA_STORAGE_BIN OUT.db -- how events_v6_main-c72e842.db was made:
# main's data-storage at c72e842 (schema 6: event_id UNIQUE, registry columns, labels)
# stores 10 records (6 state_changed of two sensors with registry context and labels, a
# light without context, call_service, automation_triggered, a second home's event), is
# stopped cleanly, and its events.db is copied. Kept to remake the fixture; the test
# (test_identity_index.sh) does not run it: the fixture must come from the old binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fixture_lib.sh" "$@"   # BIN and OUT from the arguments, data-storage started; post, ctx, fixture_finish
r() { # r TYPE ENTITY TIME N STATE CONTEXT
  printf '{"event_type":"%s","entity_id":%s,"time_fired":"%s","context_id":"v6-%s","state":%s,"attributes":{"unit_of_measurement":"W"}%s}' "$@"; }
CTX=',"area_id":"kitchen","area":"Kitchen","floor_id":"ground","floor":"Ground","device_id":"dev1","device":"Plug","manufacturer":"X","model":"Y","labels":["energy","old"],"platform":"zha","entity_category":null'
B="[$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:00.000001Z 1 '"120"' "$CTX"),
$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:01.000001Z 2 '"130"' "$CTX"),
$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:02.000001Z 3 '"140"' "$CTX"),
$(r state_changed '"sensor.v6_energy"' 2026-06-01T10:00:03.000001Z 4 '"1.5"' "$CTX"),
$(r state_changed '"sensor.v6_energy"' 2026-06-01T10:00:04.000001Z 5 '"1.6"' "$CTX"),
$(r state_changed '"sensor.v6_energy"' 2026-06-01T10:00:05.000001Z 6 '"1.7"' "$CTX"),
$(r state_changed '"light.v6_lamp"' 2026-06-01T10:00:06.000001Z 7 '"on"' ''),
$(r call_service null 2026-06-01T10:00:07.000001Z 8 null ''),
$(r automation_triggered null 2026-06-01T10:00:08.000001Z 9 null '')]"
post --data-binary "$B"
post -H "X-HomeIQ-Home: cabin" --data-binary "[$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:00.000001Z 10 '"7"' '')]"
fixture_finish "$OUT"
