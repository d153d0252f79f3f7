#!/usr/bin/env python3
"""bench/influx_req_cost.py URL PID NREQ EVENTS_PER_REQ [REQ_PER_S [gzip]] -- what one /write costs influxd.

Why (issue 15): at a steady 1,000 events/s HomeIQ's batches carry a few events each, and
influxd's CPU per event was ten times the plain batched writer's although the points were the
same. This writes NREQ requests of EVENTS_PER_REQ events each -- per event one point of
home_assistant_events (a ~900-byte record) and one homeiq_feed point, as data-storage writes
them -- at REQ_PER_S requests a second (0: as fast as answered; "gzip": bodies sent gzipped, as
Content-Encoding: gzip) into a new database, and prints
influxd's CPU (utime + stime of PID from /proc) per 1,000 events and per request. Run by
bench/influx_req_cost.sh; compare the sizes, not the machines.
REQCOST_FEED picks the feed's form: "event" (default: a point per event, the form before session 8),
"batch" (influx_feed.h: one point per run of up to ~60 KB of entries, as data-storage writes it since)
or "none" (no feed at all: the events' points alone)."""
import gzip
import os
import sys
import time
import urllib.request

URL, PID, NREQ, PER = sys.argv[1].rstrip("/"), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
RATE = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
GZIP = len(sys.argv) > 6 and sys.argv[6] == "gzip"
FEED = os.environ.get("REQCOST_FEED", "event")
DB = f"reqcost_{os.getpid()}_{PER}"


def post(path: str, data: bytes, gz: bool = False) -> None:
    headers = {"Content-Encoding": "gzip"} if gz else {}
    req = urllib.request.Request(URL + path, data=gzip.compress(data, 1) if gz else data, method="POST",
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


def ticks() -> int:
    f = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


post("/query", f'q=CREATE DATABASE "{DB}"'.encode())
rec = "x" * 900
t0 = time.time_ns() - 10**10
n = 0
c0, start = ticks(), time.monotonic()
for k in range(NREQ):
    lines, entries = [], []

    def feed_point():
        if entries:
            seq0 = t0 // 1000 + n - len(entries) + 1
            lines.append('homeiq_feed e="' + "\n".join(entries) + f'",n={len(entries)}i {seq0 * 1000}')
            entries.clear()

    for _ in range(PER):
        e = n % 120
        lines.append(f'home_assistant_events,domain=sensor,entity_id=sensor.e{e},event_type=state_changed '
                     f'event_id="{n:032x}",record="{rec}",value={n % 50} {t0 + n * 1000}')
        if FEED == "event":
            lines.append(f'homeiq_feed,domain=sensor,entity_id=sensor.e{e},event_type=state_changed '
                         f'event_id="{n:032x}",t={t0 + n * 1000}i {t0 + n * 1000 + 7}')
        elif FEED == "batch":
            entries.append(f"{n:032x}\t{t0 + n * 1000}\tsensor.e{e}\tsensor\tstate_changed\t")
            if len(entries) * (len(entries[-1]) + 1) > 59600 or len(entries) == 1000:
                feed_point()
        n += 1
    feed_point()
    post(f"/write?db={DB}&precision=ns", "\n".join(lines).encode(), GZIP)
    if RATE:
        time.sleep(max(0.0, start + (k + 1) / RATE - time.monotonic()))
wall = time.monotonic() - start
cpu = (ticks() - c0) / os.sysconf("SC_CLK_TCK")
print(f"feed={FEED} requests={NREQ} events_per_request={PER}{' gzip' if GZIP else ''} events={n} wall_s={wall:.2f} influxd_cpu_s={cpu:.2f} "
      f"per_1000_events_s={cpu / (n / 1000):.3f} per_request_ms={cpu / NREQ * 1000:.2f}")
