# sensor_batch.sh -- sourced by storage tests that post numbered batches and count them back.
# sensor_batch PREFIX N: {"events":[...]} with N state_changed events of sensor.PREFIX_1..N
# (state i, fired at second i % 60 of 2025-01-01T00:00), one line on stdout.
sensor_batch() {
  local ev="" i
  for i in $(seq 1 "$2"); do
    ev="$ev${ev:+,}{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.$1_$i\",\"state\":\"$i\",\"time_fired\":\"2025-01-01T00:00:$(printf %02d $((i % 60)))Z\",\"attributes\":{}}"
  done
  echo "{\"events\":[$ev]}"
}
