#!/usr/bin/env bash
# make_events_v9.sh DATA_STORAGE_BIN OUT.db -- how events_v9_main-e3aed48.db was made:
# main's data-storage at e3aed48 (schema 9: events_time, the four registry indexes, full
# events_type_time) stores 14 records: sensor.v9_power with context in the kitchen, then
# moved to the hall, then back (three batches, the last one older than the second: a
# late batch), sensor.v9_energy in the hall, a light without context, a
# device_registry_updated without entity but with a device and area, call_service,
# automation_triggered, and a second home's sensor.v9_power in the attic; stopped
# cleanly, its events.db copied. Kept to remake the fixture; the test
# (test_lean_migration.sh) does not run it: the fixture must come from the old binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fixture_lib.sh" "$@"   # BIN and OUT from the arguments, data-storage started; post, ctx, fixture_finish
r() { # r TYPE ENTITY TIME N STATE CONTEXT
  printf '{"event_type":"%s","entity_id":%s,"time_fired":"%s","context_id":"v9-%s","state":%s,"attributes":{}%s}' "$@"; }
post --data-binary "[$(r state_changed '"sensor.v9_power"' 2026-06-01T10:00:00.000001Z 1 '"120"' "$(ctx kitchen ground dev1 energy)"),
$(r state_changed '"sensor.v9_power"' 2026-06-01T10:00:01.000001Z 2 '"130"' "$(ctx kitchen ground dev1 energy)"),
$(r state_changed '"sensor.v9_energy"' 2026-06-01T10:00:02.000001Z 3 '"1.5"' "$(ctx hall ground dev2 energy)"),
$(r state_changed '"light.v9_lamp"' 2026-06-01T10:00:03.000001Z 4 '"on"' ''),
$(r device_registry_updated null 2026-06-01T10:00:04.000001Z 5 null "$(ctx kitchen ground dev1 energy)"),
$(r call_service null 2026-06-01T10:00:05.000001Z 6 null '')]"
post --data-binary "[$(r state_changed '"sensor.v9_power"' 2026-06-01T12:00:00.000001Z 7 '"140"' "$(ctx hall ground dev1 energy)"),
$(r state_changed '"sensor.v9_power"' 2026-06-01T12:00:01.000001Z 8 '"150"' "$(ctx hall ground dev1 energy)"),
$(r automation_triggered null 2026-06-01T12:00:02.000001Z 9 null '')]"
post --data-binary "[$(r state_changed '"sensor.v9_power"' 2026-06-01T11:00:00.000001Z 10 '"125"' "$(ctx kitchen ground dev1 energy)"),
$(r state_changed '"sensor.v9_energy"' 2026-06-01T11:00:01.000001Z 11 '"1.6"' "$(ctx hall ground dev2 energy)"),
$(r state_changed '"sensor.v9_power"' 2026-06-01T13:00:00.000001Z 12 '"160"' "$(ctx kitchen ground dev1 energy)")]"
post -H "X-HomeIQ-Home: cabin" --data-binary "[$(r state_changed '"sensor.v9_power"' 2026-06-01T10:00:00.000001Z 13 '"7"' "$(ctx attic top dev9 solar)"),
$(r state_changed '"sensor.v9_power"' 2026-06-01T10:30:00.000001Z 14 '"8"' "$(ctx attic top dev9 solar)")]"
fixture_finish "$OUT"
