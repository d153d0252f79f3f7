#!/usr/bin/env python3
"""ha_oracle.py -- differential oracle for INFLUXDB_SCHEMA=homeassistant.

Why: the C point builder (services/data-storage/ha_point.c, pyval.c)
re-implements Python's float() and str(); the surest check is real Python.
This script generates random state_changed events with awkward attribute
values and writes, next to them, the line HA's InfluxDB integration would
write for each (default configuration), by the reference rules
(../shared/reference/ha-websocket-protocol.md §3: _generate_event_to_json
and influxdb-python's line format: tags and fields sorted, floats repr(),
strings escaping '"' and '\\'), evaluated by this Python's own float(),
str() and re. ha_schema_suite.sh posts the events through HomeIQ and writes
these lines into a second database, then compares what influxd holds.

Use: ha_oracle.py N SEED EVENTS_OUT LINES_OUT
Kept out of the comparison, as documented in docs/INFLUXDB.md: tags and keys
with backslashes or newlines (HomeIQ writes InfluxDB 1.x's "tag form"),
non-finite states (HomeIQ dead-letters them; HA's batch would fail), and
attributes named "state" or ending in _str (they can give one field two
types: a field type conflict, which InfluxDB refuses for both writers; the
conflict case itself is tested in ha_schema_suite.sh).
"""
import json
import math
import random
import re
import sys
from datetime import datetime, timezone

RE_DIGIT_TAIL = re.compile(r"^[^\.]*\d+\.?\d+[^\.]*$")
RE_DECIMAL = re.compile(r"[^\d.]+")
ONE = ("on", "locked", "above_horizon", "open", "home")
ZERO = ("off", "unlocked", "unknown", "below_horizon", "closed", "not_home")


def state_as_number(s):
    if s in ONE:
        return 1
    if s in ZERO:
        return 0
    return float(s)


def event_to_json(entity_id, state, attrs, time_ns):
    """HA's _generate_event_to_json with the default configuration."""
    if state in ("unknown", "", "unavailable"):
        return None
    include_state = include_value = False
    try:
        value = float(state)
        include_value = True
    except ValueError:
        try:
            value = float(state_as_number(state))
            include_state = include_value = True
        except ValueError:
            include_state = True
    include_uom = True
    measurement = attrs.get("unit_of_measurement")
    if measurement in (None, ""):
        measurement = entity_id
    else:
        include_uom = False
    domain, object_id = entity_id.split(".", 1)
    point = {"measurement": measurement, "tags": {"domain": domain, "entity_id": object_id},
             "time": time_ns, "fields": {}}
    fields = point["fields"]
    if include_state:
        fields["state"] = state
    if include_value:
        fields["value"] = value
    for key, value in attrs.items():
        if key != "unit_of_measurement" or include_uom:
            if key in fields:
                key = f"{key}_"
            try:
                fields[key] = float(value)
            except (ValueError, TypeError):
                new_key = f"{key}_str"
                new_value = str(value)
                fields[new_key] = new_value
                if RE_DIGIT_TAIL.match(new_value):
                    fields[key] = float(RE_DECIMAL.sub("", new_value))
            try:
                if not math.isfinite(fields[key]):
                    del fields[key]
            except (KeyError, TypeError):
                pass
    return point


def esc_measurement(s):
    return str(s).replace(",", "\\,").replace(" ", "\\ ")


def esc_tag(s):
    return str(s).replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def field_value(v):
    if isinstance(v, float):
        return repr(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_line(p):
    tags = "".join(f",{esc_tag(k)}={esc_tag(v)}" for k, v in sorted(p["tags"].items()) if k != "" and str(v) != "")
    fields = ",".join(f"{esc_tag(k)}={field_value(v)}" for k, v in sorted(p["fields"].items()) if k != "")
    return f"{esc_measurement(p['measurement'])}{tags} {fields} {p['time']}"


# ---- random awkward values ---------------------------------------------------

NUMERIC_STRINGS = ["1.5", " 1.5 ", "1_000", "1_000.000_1e1_0", "1e5", ".5", "5.", "+3", "-0", "inf", "-Infinity",
                   "nan", "NaN", "1e999", "1e-400", "1__0", "_1", "1_", "0x10", "1,5", "5 kWh", "\u00a07",
                   "\t42\n", "99%", "Last seen 23 minutes ago", "0.120.240.2023873", "v1.5", "a 1 b 2", "1.x",
                   "2017-01-01 00:00:00", "9" * 400, "12", "007", "3.14159265358979323846"]
TEXT = ["", "plain", "it's", 'say "hi"', "both ' and \"", "tab\there", "new\nline", "back\\slash", "é ü 😀",
        "\u2028sep", "\x01ctrl", "\u00a0nbsp", "mdi:home", "[1, 2]", "{'a': 1}", "None", "True", "°C", "\u200bzw"]
FLOATS = [0.0, -0.0, 1.0, 0.1, 0.1 + 0.2, 1e16, 1e15, 1234567890123456.0, 1e-5, 1e-4, 5e-324, 1.7976931348623157e308,
          22.9, -7.25, 1e22, 123456.789, 2.5e-7]


def rnd_scalar(r):
    k = r.randrange(8)
    if k == 0:
        return r.choice(NUMERIC_STRINGS)
    if k == 1:
        return r.choice(TEXT)
    if k == 2:
        return r.choice(FLOATS) * r.choice([1, -1])
    if k == 3:
        return r.choice([0, 1, -1, 7, 255, 2 ** 53 + 1, -(2 ** 62), 10 ** 18])
    if k == 4:
        return r.choice([True, False, None])
    return r.choice(NUMERIC_STRINGS + TEXT)


def rnd_value(r, depth=0):
    k = r.randrange(10)
    if depth < 2 and k == 0:
        return [rnd_value(r, depth + 1) for _ in range(r.randrange(4))]
    if depth < 2 and k == 1:
        return {r.choice(["a", "b", "it's", "k k", "1"]): rnd_value(r, depth + 1) for _ in range(r.randrange(3))}
    return rnd_scalar(r)


KEYS = ["friendly_name", "battery", "value", "value_", "icon", "rgb_color", "last_seen", "temperature",
        "with space", "comma,key", "eq=key", "é", "device_class", "a", "b"]
UNITS = ["°C", "W", "%", "", None, 5, "kWh", "m³", "a b,c"]
STATES = ["21.5", " 7 ", "1e3", "1_000", "on", "off", "open", "closed", "home", "not_home", "heat", "standby",
          "unknown", "unavailable", "", "locked", "below_horizon", "0", "-3.25", "é 😀", 'q"uote', "x,y=z w"]


def main():
    n, seed, events_out, lines_out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    r = random.Random(seed)
    base = datetime(2025, 7, 1, tzinfo=timezone.utc).timestamp()
    events, lines = [], []
    for i in range(n):
        entity_id = f"{r.choice(['sensor', 'light', 'climate', 'switch'])}.o{r.randrange(30)}"
        state = r.choice(STATES)
        attrs = {}
        if r.randrange(3):
            attrs["unit_of_measurement"] = r.choice(UNITS)
        for _ in range(r.randrange(6)):
            attrs[r.choice(KEYS)] = rnd_value(r)
        sec, us = divmod(i * 1000003, 1000000)
        t = datetime.fromtimestamp(base + sec, tz=timezone.utc).replace(microsecond=us).isoformat()
        time_ns = (int(base) + sec) * 10 ** 9 + us * 1000
        ctx = f"01JZ{i:022d}"
        events.append({"event_type": "state_changed", "time_fired": t, "origin": "LOCAL",
                       "context": {"id": ctx, "parent_id": None, "user_id": None},
                       "data": {"entity_id": entity_id, "old_state": None,
                                "new_state": {"entity_id": entity_id, "state": state, "attributes": attrs,
                                              "last_changed": t, "last_updated": t,
                                              "context": {"id": ctx, "parent_id": None, "user_id": None}}}})
        p = event_to_json(entity_id, state, attrs, time_ns)
        if p is not None:
            lines.append(make_line(p))
    with open(events_out, "w") as f:
        json.dump(events, f, ensure_ascii=False)
    with open(lines_out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(len(lines))


if __name__ == "__main__":
    main()
