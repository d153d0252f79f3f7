#!/usr/bin/env python3
"""bench/influx_replay.py URL PID CAPTURE MODE -- what HomeIQ's own /write requests cost influxd (issue 15).

CAPTURE is a file of bench/influx_capture.py (every request data-storage sent during a bench/run case).
Its CREATE queries are replayed first, then its /write lines, one request at a time, as fast as answered,
and influxd's CPU (utime + stime of PID) is printed per 1,000 events (= home_assistant_events lines).
MODE: "asis" (the captured requests as they were) or "rebatch:N" (the lines of each db/rp, in order, in
requests of N lines: what a writer that batched across HomeIQ's batches would send).
REPLAY_ONLY / REPLAY_DROP = comma-separated measurements to keep / leave out;
REPLAY_SORT_TAGS=1 rewrites each line's tags sorted by key (what influxd otherwise sorts per point).
REPLAY_READS=1 (asis): the captured SELECT/SHOW queries and /pings too, each where it was in the capture (only
those between the first and the last /write: what falls in bench/run's CPU window of a case).
REPLAY_PACE=N: at most N events/s (the burst's end-to-end rate), instead of as fast as answered.
Prints one JSON line."""
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from influx_capture_file import query_text, read, split_lines

URL, PID, CAP, MODE = sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ONLY = set(filter(None, os.environ.get("REPLAY_ONLY", "").split(",")))
DROP = set(filter(None, os.environ.get("REPLAY_DROP", "").split(",")))
SORT = os.environ.get("REPLAY_SORT_TAGS") == "1"
# REPLAY_READS=1 (asis only): also the captured reads (SELECT/SHOW /query, /ping), each at its captured place
READS = os.environ.get("REPLAY_READS") == "1"
# REPLAY_PACE=N: no faster than N events/s (each request waits until its events are due): the burst's own pace
PACE = float(os.environ.get("REPLAY_PACE", "0"))
# REPLAY_DROP_FIELDS=a,b: the event point (home_assistant_events) without those fields (what a slimmer point saves)
DROPF = [re.compile(rb"," + f.encode() + rb'=(?:"(?:[^"\\]|\\.)*"|[^, ]*)')
         for f in filter(None, os.environ.get("REPLAY_DROP_FIELDS", "").split(","))]
UNESC_COMMA = re.compile(rb"(?<!\\),")


def meas(line):
    return line.split(b" ", 1)[0].split(b",", 1)[0].decode()


def sort_tags(line):
    key, rest = line.split(b" ", 1)
    parts = UNESC_COMMA.split(key)
    return b",".join([parts[0]] + sorted(parts[1:], key=lambda t: t.split(b"=", 1)[0])) + b" " + rest


def drop_fields(line):
    key, rest = line.split(b" ", 1)
    for r in DROPF:
        rest = r.sub(b"", rest, count=1)
    return key + b" " + rest


def post(path, data):
    req = urllib.request.Request(URL + path, data=data, method="POST")
    with urllib.request.urlopen(req, timeout=300) as r:
        r.read()


def send(m, p, body):
    req = urllib.request.Request(URL + p, data=body or None, method=m)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
    except urllib.error.HTTPError as e:  # a read of a measurement not written (yet) answers like it did in the burst
        e.read()


def ticks():
    f = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


creates, writes, events, reads = [], [], 0, []
for m, p, body, enc in read(CAP):
    u = urllib.parse.urlparse(p)
    if u.path == "/query":
        q = query_text(u, body)
        if q.upper().startswith("CREATE"):
            creates.append(q)
        elif READS:
            reads.append((len(writes), m, p, body))
    elif u.path == "/ping" and READS:
        reads.append((len(writes), m, p, body))
    elif u.path == "/write":
        lines = split_lines(body)
        events += sum(1 for ln in lines if ln.startswith(b"home_assistant_events"))
        lines = [ln for ln in lines if (not ONLY or meas(ln) in ONLY) and meas(ln) not in DROP]
        if SORT:
            lines = [sort_tags(ln) for ln in lines]
        if DROPF:
            lines = [drop_fields(ln) if ln.startswith(b"home_assistant_events") else ln for ln in lines]
        if lines:
            writes.append((p, lines))
for q in creates:
    post("/query", urllib.parse.urlencode({"q": q}).encode())
reqs = []
if MODE == "asis":
    reqs = [(p, b"\n".join(ls)) for p, ls in writes]
    # each read before the write that followed it in the capture; only those between the first and the last write:
    # the ones before are data-storage's start (before bench/run's clock), the ones after are the bench's read-back
    for at, m, p, body in reversed([r for r in reads if 0 < r[0] < len(writes)]):
        reqs.insert(at, (p, (m, body)))
else:
    n = int(MODE.split(":")[1])
    by = {}
    for p, ls in writes:
        by.setdefault(p.split("&db=")[0] if False else p, []).extend(ls)
    # keep each path's lines in order; interleave paths the way they first appeared
    for p, ls in by.items():
        for s in range(0, len(ls), n):
            reqs.append((p, b"\n".join(ls[s:s + n])))
nreads = sum(1 for _, b in reqs if isinstance(b, tuple))
nlines = sum(b.count(b"\n") + 1 for _, b in reqs if not isinstance(b, tuple))
nbytes = sum(len(b) for _, b in reqs if not isinstance(b, tuple))
time.sleep(1)
c0, t0 = ticks(), time.monotonic()
due = 0
for p, b in reqs:
    if PACE and due:
        time.sleep(max(0.0, t0 + due / PACE - time.monotonic()))
    if not isinstance(b, tuple):
        due += b.count(b"\nhome_assistant_events") + b.startswith(b"home_assistant_events")
    if isinstance(b, tuple):
        send(b[0], p, b[1])
    else:
        post(p, b)
wall = time.monotonic() - t0
c1 = ticks()
time.sleep(3)
c2 = ticks()
time.sleep(7)
c3 = ticks()
hz = os.sysconf("SC_CLK_TCK")
k = events / 1000
print(json.dumps({"mode": MODE, "only": sorted(ONLY), "drop": sorted(DROP), "sorted_tags": SORT,
                  "drop_fields": os.environ.get("REPLAY_DROP_FIELDS", ""), "events": events,
                  "requests_per_1000": round((len(reqs) - nreads) / k, 2),
                  "reads_per_1000": round(nreads / k, 2), "pace": PACE, "bytes_per_1000": round(nbytes / k),
                  "wall_s": round(wall, 2), "events_per_s": round(events / wall),
                  "influxd_cpu_s_per_1000": round((c1 - c0) / hz / k, 4),
                  "influxd_cpu_s_per_1000_plus_3s": round((c2 - c0) / hz / k, 4),
                  "influxd_cpu_s_per_1000_plus_10s": round((c3 - c0) / hz / k, 4),
                  "load": open("/proc/loadavg").read().split()[0]}))
