# gen_events.jq -- realistic enriched records with awkward content, for the
# storage tests and bench/storage_insert.sh.
# Use: jq -nc --argjson n 1000 --argjson from 0 -f gen_events.jq   (one JSON array)
# Record i is the same on every run (deterministic), so batches can be re-posted.
def pad6: tostring | ("000000" + .)[-6:];
def rfc3339(us): ((us / 1000000 | floor) | todate | sub("Z$"; "")) + "." + (us % 1000000 | pad6) + "Z";
def entity(i):
  [ "sensor.temp_°C_living",
    "light.kitchen, \"main\"",
    "sensor.back\\slash",
    "switch.new\nline",
    "sensor.emoji_😀",
    "sensor.space here=eq",
    "binary_sensor.door",
    "climate.it's_cold" ][i % 8] + "_" + ((i % 25) | tostring);
def state(i):
  [ "21.\(i % 10)", "on", "off", "unavailable", "a \"quoted\" state, with commas",
    "back\\slash and\nnewline", "°C 😀 ünïcödé", "=== spaces   and = equals" ][i % 8];
[ range($from; $from + $n) | . as $i
  | (1749888000000000 + $i * 1234567) as $t
  | if $i % 10 == 9 then
      { event_type: "call_service", time_fired: rfc3339($t), origin: "LOCAL",
        context_id: "ctx-\($i)", context_parent_id: null, context_user_id: "user \"admin\"",
        data: { domain: "light", service: "turn_on", service_data: { entity_id: "light.kitchen", brightness: ($i % 255) } },
        time_of_day: "morning", weekday: "Saturday" }
    else
      entity($i) as $e
      | { event_type: "state_changed", entity_id: $e, domain: ($e | split(".")[0]),
          object_id: ($e | split(".")[1:] | join(".")), time_fired: rfc3339($t), origin: "LOCAL",
          context_id: "ctx-\($i)", context_parent_id: null, context_user_id: null,
          state: state($i), value: (if $i % 8 == 0 then (21 + ($i % 10) / 10) else null end),
          old_state: state($i + 1), old_value: (if $i % 8 == 7 then 20.5 else null end),
          unit_of_measurement: (if $i % 2 == 0 then "°C" else null end),
          device_class: (if $i % 3 == 0 then "temperature" else null end),
          state_class: "measurement",
          friendly_name: "Living room \"main\" 😀 #\($i % 25)",
          attributes: { friendly_name: "Living, room = \"main\"", unit_of_measurement: "°C",
                        zeta: 1, alpha: [1, 2.5, "x,y z", null, true], "key with space": "tab\there",
                        nested: { "a\\b": "c\nd", emoji: "🏠" }, n: ($i * 0.1) },
          duration_in_state: ($i % 600 + 0.25), state_changed: true,
          time_of_day: "morning", weekday: "Saturday" }
    end ]
