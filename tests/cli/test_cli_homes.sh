#!/usr/bin/env bash
# tests/cli/test_cli_homes.sh -- homeiqctl --home and homeiqctl homes against a
# real data-storage (SQLite) holding two homes with identical entity ids and
# times (issue 18).
#
# Why: an installation that stores many homes is looked at one home at a time:
# every read command (events, events -f, stats, validate: test_cli.sh) must
# select the home asked -- before the command (homeiqctl --home ID ...) or as
# its own option -- and never show another home's rows; a malformed id is a
# usage error (2) naming --home, a command that does not read by home refuses
# it, and `homes` lists each home with its event count.
# Usage: test_cli_homes.sh HOMEIQCTL DATA_STORAGE
. "$(dirname "$0")/../lib/common.sh"
CTL=${1:?usage: test_cli_homes.sh HOMEIQCTL DATA_STORAGE} STORAGE=${2:?}
export DATA_DIR=$TEST_TMP/data LOG_LEVEL=warn
mkdir -p "$DATA_DIR"
PORT=$(free_port)
export DATA_STORAGE_URL=http://127.0.0.1:$PORT
start_bg storage env DATA_STORAGE_PORT="$PORT" "$STORAGE"
check "data-storage starts" wait_healthy "$DATA_STORAGE_URL/health" 20

post() { # post BODY [HOME]
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' ${2:+-H "X-HomeIQ-Home: $2"} \
    --data-binary "$1" "$DATA_STORAGE_URL/api/v1/events"
}
rec() { # rec ENTITY TIME STATE
  printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"c-%s"}' \
    "$1" "$2" "$3" "$3" "$2"
}
T=sensor.cli_temp H=$(date -u -d '-3 hours' +%Y-%m-%dT%H)
check_eq "home default: 2 states" 200 "$(post "[$(rec $T $H:00:00Z 10.0),$(rec $T $H:10:00Z 20.0)]")"
check_eq "home b: the same 2 and one more" 200 "$(post "[$(rec $T $H:00:00Z 10.0),$(rec $T $H:10:00Z 20.0),$(rec $T $H:20:00Z 90.0)]" b)"

homes_of() { jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))'; }
check_eq "homeiqctl --home b events --json: b's 3 events only" '3 b' "$("$CTL" --home b events --json | homes_of)"
check_eq "homeiqctl events --home b --json: the same" '3 b' "$("$CTL" events --home b --json | homes_of)"
check_eq "homeiqctl --home=default events --json: the default home's 2" '2 default' "$("$CTL" --home=default events --json | homes_of)"
check_eq "homeiqctl events --json (no --home): every home's 5" '5 b,default' "$("$CTL" events --json | homes_of)"
check "homeiqctl --home b events (table): 3 rows" grep -q '^(3 events, newest first)' <<<"$("$CTL" --home b events)"
check_eq "homeiqctl --home nobody events --json: none" '0 ' "$("$CTL" --home nobody events --json | homes_of)"

stat_of() { jq -r --arg t "$T" '.[$t][] | "\(.count) \(.min) \(.max)"'; }
check_eq "homeiqctl --home b stats: b's hourly row (10, 20, 90)" '3 10 90' \
  "$("$CTL" --home b stats --entity $T --start $H:00:00Z --types count,min,max --json | stat_of)"
check_eq "homeiqctl stats --home default: its own (10, 20)" '2 10 20' \
  "$("$CTL" stats --home default --entity $T --start $H:00:00Z --types count,min,max --json | stat_of)"
check "homeiqctl --home b stats (table): b's row (count 3)" \
  grep -Eq ' 3$' <<<"$("$CTL" --home b stats --entity $T --start $H:00:00Z --types count,min,max)"

OUT=$("$CTL" homes); RC=$?
check_eq "homeiqctl homes exits 0" 0 "$RC"
check_eq "homeiqctl homes: each home with its events, in home id order" 'b 3|default 2' \
  "$(awk 'NR > 1 {print $1, $2}' <<<"$OUT" | paste -sd'|')"
check_eq "homeiqctl homes --json" 'b:3 default:2' \
  "$("$CTL" homes --json | jq -r '[.homes[] | "\(.home_id):\(.events)"] | join(" ")')"

# follow one home: only its new events are printed
start_bg follow "$CTL" --home b events -f --json --interval 200ms --limit 1
FPID=$LAST_PID
printed() { [ "$(grep -c . "$TEST_TMP/follow.log")" -ge "$1" ]; }
check "events -f --home b prints b's latest event" wait_for 20 printed 1
N=$(date -u -d '-1 seconds' +%Y-%m-%dT%H:%M:%SZ)
check_eq "a new event for the default home" 200 "$(post "[$(rec sensor.cli_new $N 1.0)]")"
check_eq "a new event for home b" 200 "$(post "[$(rec sensor.cli_new $N 2.0)]" b)"
# the default home's event was stored first, at the same time: a poll that finds b's would find it too
check "events -f --home b prints b's new event" wait_for 20 printed 2
kill -INT "$FPID"; stop_pid "$FPID"
check_eq "events -f --home b: b's 2 events, never the default home's" '2 b 2.0' \
  "$(jq -rs '"\(length) " + ([.[] | .home_id // "default"] | unique | join(",")) + " " + (.[-1].state)' "$TEST_TMP/follow.log")"

# usage errors
"$CTL" --home 'Bad!' events >/dev/null 2>"$TEST_TMP/err"; RC=$?
check_eq "--home Bad!: usage error (2)" 2 "$RC"
check "... naming --home" grep -q '^homeiqctl: --home Bad!' "$TEST_TMP/err"
check_eq "events --home UPPER: usage error (2)" 2 "$("$CTL" events --home UPPER >/dev/null 2>&1; echo $?)"
"$CTL" --home b backup --out "$TEST_TMP/x.db" >/dev/null 2>"$TEST_TMP/err"; RC=$?
check_eq "--home with a command that does not read by home (backup): usage error (2)" 2 "$RC"
check "... saying so" grep -q 'backup does not read by home' "$TEST_TMP/err"
check_eq "--home with homes: usage error (2)" 2 "$("$CTL" --home b homes >/dev/null 2>&1; echo $?)"
check_eq "--home without an id: usage error (2)" 2 "$("$CTL" --home >/dev/null 2>&1; echo $?)"
check "homeiqctl --help documents --home" grep -q -- '--home ID' <<<"$("$CTL" --help)"
for c in events stats validate homes; do
  check "homeiqctl $c --help documents --home" grep -q -- '--home' <<<"$("$CTL" $c --help)"
done
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
finish
