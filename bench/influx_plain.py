#!/usr/bin/env python3
"""bench/influx_plain.py URL DB COUNT BATCH [RATE] -- the reference writer for the cost to
InfluxDB (issue 15): COUNT points of the shape data-storage writes (measurement
home_assistant_events, the same tags and fields, a ~1 KB "record" string field,
one series per entity, 120 entities, one point per event, nanosecond
timestamps) written straight to influxd with /write in batches of BATCH lines,
nothing else (no queries). bench/run measures influxd's CPU over this and over
HomeIQ's own cases; HomeIQ should cost influxd no more than this does.
RATE (points/s, default 0 = as fast as it can): batch k is sent at k * BATCH / RATE
seconds after the first, i.e. the cadence of HomeIQ's steady case (a small batch
every few ms) with nothing but the events' writes (bench/run's plain-writer-steady).
Prints {"points": COUNT, "requests": N, "seconds": S}, and with INFLUXD_PID in the environment also
"influxd_ticks": influxd's utime+stime over the writes only (bench/run's figure covers the whole script)."""
import os
import json
import sys
import time
import urllib.request

URL, DB, COUNT, BATCH = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
RATE = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
DOMAINS = ["sensor", "binary_sensor", "light", "switch", "climate", "cover"]


def esc_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def point(i: int, t0_ns: int) -> str:
    dom = DOMAINS[i % len(DOMAINS)]
    ent = f"{dom}.plain_{i % 120}"
    state = f"{20 + (i % 50) / 10:.1f}" if dom == "sensor" else ("on" if i % 2 else "off")
    attrs = {"unit_of_measurement": "°C", "device_class": "temperature", "friendly_name": f"Plain {i % 120}",
             "state_class": "measurement"}
    ctx = f"01JXPS4SATTNZJ8RR{i:09d}"
    rec = {"event_type": "state_changed", "entity_id": ent, "domain": dom, "object_id": f"plain_{i % 120}",
           "time_fired": "2026-11-30T09:00:00.000000Z", "origin": "LOCAL", "context_id": ctx,
           "context_parent_id": None, "context_user_id": None, "state": state, "value": None,
           "old_state": state, "old_value": None, "unit_of_measurement": "°C", "device_class": "temperature",
           "state_class": "measurement", "friendly_name": attrs["friendly_name"], "attributes": attrs,
           "duration_in_state": 12.5, "state_changed": True, "time_of_day": "morning", "weekday": "monday",
           "event_id": f"{i:032x}", "padding": "x" * 300}
    rec_text = json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
    line = (f"home_assistant_events,device_class=temperature,domain={dom},entity_id={ent},event_type=state_changed,"
            f"unit_of_measurement=°C event_id=\"{i:032x}\",stored_at=\"2026-11-30T09:00:00.000000Z\","
            f"record={esc_str(rec_text)},state={esc_str(state)},old_state={esc_str(state)},"
            f"duration_in_state=12.5,context_id={esc_str(ctx)},"
            f"attributes={esc_str(json.dumps(attrs, separators=(',', ':'), ensure_ascii=False))}")
    if dom == "sensor":
        line += f",value={state},old_value={state}"
    return f"{line} {t0_ns + i * 1000}"


def post(path: str, data: bytes) -> None:
    req = urllib.request.Request(URL + path, data=data, method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()


post("/query", f"q=CREATE DATABASE \"{DB}\"".encode())
t0_ns = time.time_ns() - COUNT * 1000 - 10**9
# build every batch first, so the timed part is the writes
batches = ["\n".join(point(i, t0_ns) for i in range(s, min(s + BATCH, COUNT))).encode() for s in range(0, COUNT, BATCH)]
PID = os.environ.get("INFLUXD_PID")


def ticks() -> int:
    if not PID:
        return 0
    f = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


c0 = ticks()
start = time.monotonic()
for k, b in enumerate(batches):
    if RATE > 0:
        wait = start + k * BATCH / RATE - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    post(f"/write?db={DB}&precision=ns", b)
secs = time.monotonic() - start
out = {"points": COUNT, "requests": len(batches), "seconds": secs}
if PID:
    out["influxd_ticks"] = ticks() - c0
print(json.dumps(out))
