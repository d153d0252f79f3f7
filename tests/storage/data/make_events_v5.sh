#!/usr/bin/env bash
# make_events_v5.sh DATA_STORAGE_BIN OUT.db -- how events_v5_main-bc6f40c.db was made:
# main's data-storage at bc6f40c (schema 5, the commit before issue 11's registry
# migration) stores 12 records (4 of sensor.old_kitchen, 8 others of several types), is
# stopped cleanly, and its events.db is copied. Kept to remake the fixture; the test does
# not run it (the fixture must come from the old binary, not this one).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fixture_lib.sh" "$@"   # BIN and OUT from the arguments, data-storage started; post, ctx, fixture_finish
r() { printf '{"event_type":"%s","entity_id":%s,"domain":%s,"time_fired":"%s","context_id":"v5-%s","state":%s,"attributes":{"unit_of_measurement":"°C"}}' "$@"; }
B="[$(r state_changed '"sensor.old_kitchen"' '"sensor"' 2025-12-31T10:00:00.000001Z 1 '"20.5"'),
$(r state_changed '"sensor.old_kitchen"' '"sensor"' 2025-12-31T10:00:01.000001Z 2 '"20.6"'),
$(r state_changed '"sensor.old_kitchen"' '"sensor"' 2025-12-31T10:00:02.000001Z 3 '"20.7"'),
$(r state_changed '"sensor.old_kitchen"' '"sensor"' 2025-12-31T10:00:03.000001Z 4 '"20.8"'),
$(r state_changed '"light.old_lamp"' '"light"' 2025-12-31T10:00:04.000001Z 5 '"on"'),
$(r state_changed '"light.old_lamp"' '"light"' 2025-12-31T10:00:05.000001Z 6 '"off"'),
$(r state_changed '"binary_sensor.old_door"' '"binary_sensor"' 2025-12-31T10:00:06.000001Z 7 '"on"'),
$(r state_changed '"sensor.old_power"' '"sensor"' 2025-12-31T10:00:07.000001Z 8 '"120"'),
$(r state_changed '"sensor.old_power"' '"sensor"' 2025-12-31T10:00:08.000001Z 9 '"130"'),
$(r call_service null null 2025-12-31T10:00:09.000001Z 10 null),
$(r automation_triggered null null 2025-12-31T10:00:10.000001Z 11 null),
$(r state_changed '"climate.old_hall"' '"climate"' 2025-12-31T10:00:11.000001Z 12 '"heat"')]"
post --data-binary "$B"
fixture_finish "$OUT"
